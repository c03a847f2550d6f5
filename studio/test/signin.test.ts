import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, kinema } from "../src/api/client";
import { authProblem, credentials, restoring, setCredentials } from "../src/auth/session";
import { restoreSession, signInProblem, signInWithPassword, signOut } from "../src/auth/signin";

interface Sent {
  method: string;
  path: string;
  headers: Headers;
  body: string;
}

const SESSION = {
  session_id: "s1",
  account_id: "a1",
  created_at: 0,
  expires_at: 1,
  user_agent: "test",
  csrf_token: "csrf-1",
  account: { account_id: "a1", name: "ada", role: "member" },
};

let sent: Sent[] = [];
let answers: Response[] = [];

function answer(status: number, body: unknown): Response {
  const envelope = status === 200 ? { code: 0, message: "SUCCEED", data: body } : body;
  return new Response(JSON.stringify(envelope), { status, headers: { "content-type": "application/json" } });
}

function refusal(status: number, code: number, message: string): Response {
  return answer(status, { code, message, request_id: "r" });
}

beforeEach(() => {
  sent = [];
  answers = [];
  vi.stubGlobal("fetch", async (request: Request) => {
    const url = new URL(request.url);
    sent.push({
      method: request.method,
      path: url.pathname,
      headers: request.headers,
      body: await request.text(),
    });
    const next = answers.shift();
    if (!next) throw new TypeError("Failed to fetch");
    return next;
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  setCredentials(null);
});

describe("signing in with a name and password", () => {
  it("keeps the name, role and CSRF token, never the password", async () => {
    answers.push(answer(200, SESSION));
    await signInWithPassword("ada", "correct horse", true);
    expect(JSON.parse(sent[0].body)).toEqual({ name: "ada", password: "correct horse", remember: true });
    expect(credentials.value).toEqual({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    expect(JSON.stringify(credentials.value)).not.toContain("correct horse");
  });

  it("sends the CSRF token on changes only, and no Authorization header", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    answers.push(answer(200, { tasks: [], total: 0, offset: 0 }), answer(200, { id: "t1" }));
    answers.push(answer(200, { key_id: "k", kind: "static", api_key: "kn_x" }));
    await kinema.list({ limit: 1 });
    await kinema.cancel("t1");
    await kinema.createKey("static");
    expect(sent.map((s) => [s.method, s.headers.get("x-csrf-token")])).toEqual([
      ["GET", null],
      ["POST", "csrf-1"],
      ["POST", "csrf-1"],
    ]);
    expect(sent.every((s) => !s.headers.has("authorization"))).toBe(true);
  });

  it("is signed out with a message when the server says the session ended", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    answers.push(refusal(401, 1004, "your session has ended (expired or signed out); sign in again"));
    await expect(kinema.account()).rejects.toBeInstanceOf(ApiError);
    expect(credentials.value).toBeNull();
    expect(authProblem.value).toEqual({ key: "auth.sessionEnded" });
  });

  it("stays signed in when a change is refused for another reason", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "stale" });
    answers.push(refusal(403, 1103, "missing or wrong X-CSRF-Token header"));
    await expect(kinema.cancel("t1")).rejects.toMatchObject({ status: 403, code: 1103 });
    expect(credentials.value?.kind).toBe("session");
    expect(authProblem.value).toBeNull();
  });
});

describe("restoring a session on start", () => {
  it("signs the tab in from the cookie, with a fresh CSRF token", async () => {
    answers.push(answer(200, SESSION));
    const restored = restoreSession();
    expect(restoring.value).toBe(true);
    await restored;
    expect(sent[0]).toMatchObject({ method: "GET", path: "/api/v1/session" });
    expect(credentials.value).toEqual({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    expect(restoring.value).toBe(false);
  });

  it("leaves a browser without a cookie signed out, quietly", async () => {
    answers.push(refusal(401, 1001, "not signed in with a session cookie"));
    await restoreSession();
    expect(credentials.value).toBeNull();
    expect(authProblem.value).toBeNull();
  });

  it("says so when the cookie's session has ended", async () => {
    answers.push(refusal(401, 1004, "your session has ended"));
    await restoreSession();
    expect(credentials.value).toBeNull();
    expect(authProblem.value).toEqual({ key: "auth.sessionEnded" });
  });

  it("signs out a tab that remembered a session the server no longer has", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    answers.push(refusal(401, 1001, "not signed in with a session cookie"));
    await restoreSession();
    expect(credentials.value).toBeNull();
    expect(authProblem.value).toEqual({ key: "auth.sessionEnded" });
  });

  it("keeps keys the tab holds without asking about cookies", async () => {
    setCredentials({ kind: "key", apiKey: "kn_static" });
    await restoreSession();
    expect(sent).toEqual([]);
    expect(credentials.value).toEqual({ kind: "key", apiKey: "kn_static" });
  });

  it("keeps what the tab knew when the server cannot be reached", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    await restoreSession(); // no answer queued: the fetch fails
    expect(credentials.value?.kind).toBe("session");
    expect(restoring.value).toBe(false);
  });
});

describe("signing out", () => {
  it("ends the session on the server with the CSRF token", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    answers.push(answer(200, { signed_out: true }));
    await signOut();
    expect(sent[0]).toMatchObject({ method: "DELETE", path: "/api/v1/session" });
    expect(sent[0].headers.get("x-csrf-token")).toBe("csrf-1");
    expect(credentials.value).toBeNull();
  });

  it("stays signed in when the server cannot be reached", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    await expect(signOut()).rejects.toBeInstanceOf(ApiError);
    expect(credentials.value?.kind).toBe("session");
  });

  it("forgets keys without a request", async () => {
    setCredentials({ kind: "pair", accessKey: "ak", secretKey: "sk" });
    await signOut();
    expect(sent).toEqual([]);
    expect(credentials.value).toBeNull();
  });
});

describe("a refused sign-in", () => {
  it("says one thing for a wrong name or password, and passes the throttle's wait on as it is", () => {
    expect(signInProblem(new ApiError(401, 1002, "the name or the password is wrong"))).toEqual({
      key: "signIn.wrong",
    });
    expect(signInProblem(new ApiError(403, 1103, "account disabled"))).toEqual({ key: "signIn.disabled" });
    const throttled = "too many failed sign-ins; try again in 42 s (or reset the password)";
    expect(signInProblem(new ApiError(429, 1302, throttled))).toEqual({
      key: "refusal.1302",
      detail: throttled,
    });
    expect(signInProblem(new ApiError(0, 0, "Failed to fetch"))).toEqual({ key: "error.network" });
  });

  it("does not raise the signed-in banner", async () => {
    answers.push(refusal(401, 1002, "the name or the password is wrong"));
    await expect(signInWithPassword("ada", "nope", true)).rejects.toMatchObject({ code: 1002 });
    expect(credentials.value).toBeNull();
    expect(authProblem.value).toBeNull();
  });
});
