// Signing in and out. A name and password open a cookie session (the server sets the HttpOnly cookie;
// we keep the CSRF token it answers with); keys are checked with one call before they are kept. On
// start the app asks the server whether this browser already has a session, so a reload or a new tab
// stays signed in.
import { ApiError, kinema } from "../api/client";
import { problemOf } from "../api/refusal";
import type { SessionView } from "../api/views";
import type { Message } from "../i18n";
import { authProblem, credentials, restoring, setCredentials, type Credentials } from "./session";

function fromSession(view: SessionView, fallbackName: string): Credentials {
  return {
    kind: "session",
    name: view.account?.name ?? fallbackName,
    role: view.account?.role ?? "member",
    csrfToken: view.csrf_token,
  };
}

/** What to tell someone whose sign-in was refused; a throttle's "try again in N s" is kept as the detail. */
export function signInProblem(error: unknown): Message {
  if (!(error instanceof ApiError) || error.status === 0) return { key: "error.network" };
  if (error.status === 401) return { key: "signIn.wrong" };
  if (error.status === 403) return { key: "signIn.disabled" };
  return problemOf(error);
}

export async function signInWithPassword(name: string, password: string, remember: boolean): Promise<void> {
  const view = await kinema.signIn({ name, password, remember });
  setCredentials(fromSession(view, name));
}

/** Keep the keys if the server accepts them (one call to list the models). */
export async function signInWithKeys(who: Credentials): Promise<void> {
  setCredentials(who);
  try {
    await kinema.models();
  } catch (error) {
    // 1003/1004: our clock is off; the answer's Date header has taught us the server's, so sign again.
    if (error instanceof ApiError && (error.code === 1003 || error.code === 1004)) {
      try {
        await kinema.models();
        return;
      } catch (again) {
        error = again;
      }
    }
    setCredentials(null);
    throw error;
  }
}

/**
 * Ask the server whether this browser has a session cookie (keys kept in this tab win). A session
 * remembered by the tab whose cookie has ended signs out with a message (the client's 401 handling).
 */
export async function restoreSession(): Promise<void> {
  const known = credentials.value;
  if (known && known.kind !== "session") return;
  restoring.value = true;
  try {
    const view = await kinema.session();
    setCredentials(fromSession(view, known?.name ?? ""));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 0) return; // offline: keep what the tab knew
    if (error.status === 401 && credentials.value) setCredentials(null);
    if (error.code === 1004) authProblem.value = { key: "auth.sessionEnded" };
  } finally {
    restoring.value = false;
  }
}

/** End the cookie session on the server (keys are simply forgotten). Throws when the server is unreachable. */
export async function signOut(): Promise<void> {
  if (credentials.value?.kind === "session") {
    try {
      await kinema.signOut();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0) throw error;
      // The session had already ended (401), or was refused otherwise: this tab forgets it either way.
    }
  }
  setCredentials(null);
}
