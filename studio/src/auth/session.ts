// Who the studio signs in as, and what each request carries to prove it. Three kinds:
// - a cookie session (name + password): the HttpOnly cookie rides along with every same-origin request;
//   we keep only the name, the role and the CSRF token, which unsafe methods echo in X-CSRF-Token;
// - a key pair: signs a fresh 30-minute token whenever the last one is within two minutes of expiry;
// - a static API key: sent as it is.
// All of it lives in sessionStorage only (gone with the tab); a password is never stored. The server's
// clock, read from each response's Date header, corrects the claims of signed tokens.
import { signal } from "@preact/signals";
import type { Message } from "../i18n";
import { signJwt } from "./jwt";

export type Credentials =
  | { kind: "session"; name: string; role: string; csrfToken: string }
  | { kind: "pair"; accessKey: string; secretKey: string }
  | { kind: "key"; apiKey: string };

const STORAGE_KEY = "kinema.credentials";
export const TOKEN_SECONDS = 1800; // Kling clients sign for at most 30 minutes
export const REFRESH_SECONDS = 120;
const NBF_SLACK_SECONDS = 5;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const CSRF_HEADER = "X-CSRF-Token";

function storage(): Storage | null {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

function load(): Credentials | null {
  try {
    const parsed: unknown = JSON.parse(storage()?.getItem(STORAGE_KEY) ?? "null");
    return isCredentials(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function isCredentials(value: unknown): value is Credentials {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  const strings = (...names: string[]) => names.every((name) => typeof v[name] === "string");
  if (v.kind === "session") return strings("name", "role", "csrfToken");
  if (v.kind === "pair") return strings("accessKey", "secretKey");
  return v.kind === "key" && strings("apiKey");
}

export const credentials = signal<Credentials | null>(load());
/** Why the server stopped accepting us (a refused key, an ended session), shown until the next sign-in. */
export const authProblem = signal<Message | null>(null);
/** True while the start-up check of the session cookie runs, so the sign-in form does not flash. */
export const restoring = signal(false);

let token: { value: string; exp: number; owner: Credentials } | null = null;
let skewSeconds = 0; // server clock minus ours

export function setCredentials(next: Credentials | null): void {
  token = null;
  authProblem.value = null;
  credentials.value = next;
  if (next) storage()?.setItem(STORAGE_KEY, JSON.stringify(next));
  else storage()?.removeItem(STORAGE_KEY);
}

/** Learn the server's clock from a response's Date header; small differences are rounding noise. */
export function learnClock(dateHeader: string | null, nowMs: number = Date.now()): void {
  const server = dateHeader ? Date.parse(dateHeader) : NaN;
  if (Number.isNaN(server)) return;
  const skew = (server - nowMs) / 1000;
  const next = Math.abs(skew) > 3 ? Math.round(skew) : 0;
  if (next !== skewSeconds) token = null;
  skewSeconds = next;
}

export function serverNow(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000) + skewSeconds;
}

/** The Authorization header value, signing a new token when needed; null when signed out or by cookie. */
export async function authorization(nowMs: number = Date.now()): Promise<string | null> {
  const who = credentials.value;
  if (!who || who.kind === "session") return null;
  if (who.kind === "key") return `Bearer ${who.apiKey}`;
  const now = serverNow(nowMs);
  if (!token || token.owner !== who || token.exp - now < REFRESH_SECONDS) {
    const exp = now + TOKEN_SECONDS;
    const value = await signJwt({ iss: who.accessKey, exp, nbf: now - NBF_SLACK_SECONDS }, who.secretKey);
    token = { value, exp, owner: who };
  }
  return `Bearer ${token.value}`;
}

/** The headers that prove who we are for a request with this method. */
export async function authHeaders(method: string, nowMs?: number): Promise<Record<string, string>> {
  const who = credentials.value;
  if (who?.kind === "session") {
    // The cookie authenticates; a change must also show the token only our own pages can read.
    return SAFE_METHODS.has(method.toUpperCase()) ? {} : { [CSRF_HEADER]: who.csrfToken };
  }
  const header = await authorization(nowMs);
  return header ? { Authorization: header } : {};
}
