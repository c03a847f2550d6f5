// Who the studio signs in as. Keys live in sessionStorage only (gone with the tab). A key pair signs a
// fresh 30-minute token whenever the last one is within two minutes of expiry; a static API key is
// sent as it is. The server's clock, read from each response's Date header, corrects the claims.
import { signal } from "@preact/signals";
import { signJwt } from "./jwt";

export type Credentials =
  { kind: "pair"; accessKey: string; secretKey: string } | { kind: "key"; apiKey: string };

const STORAGE_KEY = "kinema.credentials";
export const TOKEN_SECONDS = 1800; // Kling clients sign for at most 30 minutes
export const REFRESH_SECONDS = 120;
const NBF_SLACK_SECONDS = 5;

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
  if (v.kind === "pair") return typeof v.accessKey === "string" && typeof v.secretKey === "string";
  return v.kind === "key" && typeof v.apiKey === "string";
}

export const credentials = signal<Credentials | null>(load());
/** The server's refusal of our key (401), shown until the user signs in again. */
export const authProblem = signal<string | null>(null);

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

/** The Authorization header value, signing a new token when needed; null when signed out. */
export async function authorization(nowMs: number = Date.now()): Promise<string | null> {
  const who = credentials.value;
  if (!who) return null;
  if (who.kind === "key") return `Bearer ${who.apiKey}`;
  const now = serverNow(nowMs);
  if (!token || token.owner !== who || token.exp - now < REFRESH_SECONDS) {
    const exp = now + TOKEN_SECONDS;
    const value = await signJwt({ iss: who.accessKey, exp, nbf: now - NBF_SLACK_SECONDS }, who.secretKey);
    token = { value, exp, owner: who };
  }
  return `Bearer ${token.value}`;
}
