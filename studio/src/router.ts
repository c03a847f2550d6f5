// Screens are addressed by the URL fragment (`#/library/<task>/<index>`), so the server needs no
// catch-all route and every screen has a link that survives a reload.
import { signal } from "@preact/signals";
import { KINDS, type Kind } from "./api/views";

export type Route =
  | { screen: "create"; kind: Kind }
  | { screen: "queue" }
  | { screen: "library"; taskId?: string; index?: number }
  | { screen: "account" };

export function parseRoute(hash: string): Route {
  const [screen, a, b] = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (screen === "queue" || screen === "account") return { screen };
  if (screen === "library") {
    const index = b !== undefined && /^\d+$/.test(b) ? Number(b) : undefined;
    return a ? { screen, taskId: a, index } : { screen };
  }
  const kind = (KINDS as readonly string[]).includes(a) ? (a as Kind) : "text2video";
  return { screen: "create", kind };
}

export function href(route: Route): string {
  switch (route.screen) {
    case "create":
      return `#/create/${route.kind}`;
    case "library":
      if (!route.taskId) return "#/library";
      return `#/library/${encodeURIComponent(route.taskId)}${route.index !== undefined ? `/${route.index}` : ""}`;
    default:
      return `#/${route.screen}`;
  }
}

export const route = signal<Route>(parseRoute(globalThis.location?.hash ?? ""));

export function startRouter(): void {
  addEventListener("hashchange", () => (route.value = parseRoute(location.hash)));
}

export function go(next: Route): void {
  location.hash = href(next);
}
