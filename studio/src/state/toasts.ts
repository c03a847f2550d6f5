// Short notes in the corner ("Queued", "Done"), also read out by screen readers (role=status).
import { signal } from "@preact/signals";

export interface Toast {
  id: number;
  text: string;
  link?: { href: string; label: string };
  tone: "info" | "success" | "error";
}

export const toasts = signal<Toast[]>([]);
let next = 1;

export function toast(text: string, options: Partial<Omit<Toast, "id" | "text">> = {}): void {
  const id = next++;
  toasts.value = [...toasts.value.slice(-3), { id, text, tone: options.tone ?? "info", link: options.link }];
  setTimeout(() => dismiss(id), 6000);
}

export function dismiss(id: number): void {
  toasts.value = toasts.value.filter((t) => t.id !== id);
}
