// Translation: a locale signal, `t(key, params)` for components, and messages: a key, with a server's own
// sentence as the detail when it refused something. Components that call `t` re-render when the locale
// changes.
import { signal } from "@preact/signals";
import { en, type Key } from "./en";
import { zh } from "./zh";

export type { Key } from "./en";
export type Locale = "en" | "zh-CN";
export type Params = Record<string, string | number>;
/** Something to tell the user: a dictionary key; for a server's refusal, its own (English) sentence too. */
export interface Message {
  key: Key;
  params?: Params;
  detail?: string;
}
/** A message as shown: a headline, and the server's sentence under it. */
export interface Shown {
  headline?: string;
  detail?: string;
}

export const LOCALES: { id: Locale; label: string }[] = [
  { id: "en", label: "English" },
  { id: "zh-CN", label: "简体中文" },
];
const DICTIONARIES: Record<Locale, Record<Key, string>> = { en, "zh-CN": zh };
const STORAGE_KEY = "kinema.locale";

/** The first of the browser's preferred languages that we speak; English otherwise. */
export function detect(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

function initial(): Locale {
  const saved = safeStorage()?.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "zh-CN") return saved;
  return detect(globalThis.navigator?.languages ?? []);
}

function safeStorage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled by the browser's privacy settings
  }
}

export const locale = signal<Locale>(initial());

export function setLocale(next: Locale): void {
  locale.value = next;
  safeStorage()?.setItem(STORAGE_KEY, next);
}

export function translate(where: Locale, key: Key, params: Params = {}): string {
  const template = DICTIONARIES[where][key] ?? en[key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function t(key: Key, params?: Params): string {
  return translate(locale.value, key, params);
}

/**
 * A message as headline and detail. Next to a field, someone reading English gets the server's sentence
 * alone: it already names the field and says how to fix it, so a headline would say it twice.
 */
export function shown(message: Message, atField = false): Shown {
  if (!message.detail) return { headline: t(message.key, message.params) };
  if (atField && locale.value === "en") return { detail: message.detail };
  return { headline: t(message.key, message.params), detail: message.detail };
}

export function isKey(name: string): name is Key {
  return name in en;
}

/** The translated name of a value the server sends (`named("kind", "extend")`); the value itself when unknown. */
export function named(group: string, value: string): string {
  const key = `${group}.${value}`;
  return isKey(key) ? t(key) : value;
}

export function placeholders(text: string): string[] {
  return [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

export const dictionaries = DICTIONARIES;
