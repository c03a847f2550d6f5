// A refused call (ApiError), and what to tell the user about it: a headline in the user's language chosen
// by the Kling code (shared/KLING_API.md §8), with the server's own sentence kept as the detail (it names
// the field or the number). Codes without a headline of their own fall back by range, then by status.
import { isKey, type Key, type Message } from "../i18n";

/** A refusal: the HTTP status and Kling code, with the server's one-sentence reason. Status 0: no answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

const RANGES: { low: number; high: number; key: Key }[] = [
  { low: 1000, high: 1099, key: "refusal.auth" },
  { low: 1100, high: 1199, key: "refusal.account" },
  { low: 1200, high: 1299, key: "refusal.request" },
  { low: 1300, high: 1399, key: "refusal.limit" },
  { low: 5000, high: 5999, key: "refusal.server" },
];

/** The headline for a refusal: the code's own, its range's, or by status (0: the server was not reached). */
export function headlineOf(status: number, code: number): Key {
  if (status === 0) return "error.network";
  const own = `refusal.${code}`;
  if (isKey(own)) return own;
  const range = RANGES.find(({ low, high }) => low <= code && code <= high);
  if (range) return range.key;
  return status >= 500 ? "refusal.server" : "refusal.other";
}

/** A failed call as a message: the headline with the server's sentence, or "could not reach the server". */
export function problemOf(error: unknown): Message {
  if (!(error instanceof ApiError) || error.status === 0) return { key: "error.network" };
  return { key: headlineOf(error.status, error.code), detail: error.message };
}
