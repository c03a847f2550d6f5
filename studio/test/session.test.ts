import { afterEach, describe, expect, it } from "vitest";
import {
  REFRESH_SECONDS,
  TOKEN_SECONDS,
  authHeaders,
  authorization,
  learnClock,
  setCredentials,
} from "../src/auth/session";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

function claims(header: string | null): { iss: string; exp: number; nbf: number } {
  const payload = (header ?? "").replace("Bearer ", "").split(".")[1];
  return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
}

afterEach(() => {
  setCredentials(null);
  learnClock(new Date(NOW).toUTCString(), NOW);
});

describe("authorization", () => {
  it("is absent when signed out and the key itself for a static API key", async () => {
    expect(await authorization(NOW)).toBeNull();
    setCredentials({ kind: "key", apiKey: "kn_static" });
    expect(await authorization(NOW)).toBe("Bearer kn_static");
  });

  it("signs a 30-minute token for a key pair, valid from a few seconds ago", async () => {
    setCredentials({ kind: "pair", accessKey: "ak_1", secretKey: "sk_1" });
    const { iss, exp, nbf } = claims(await authorization(NOW));
    expect(iss).toBe("ak_1");
    expect(exp).toBe(NOW / 1000 + TOKEN_SECONDS);
    expect(nbf).toBeLessThan(NOW / 1000);
  });

  it("reuses the token until it nears expiry, then signs a fresh one", async () => {
    setCredentials({ kind: "pair", accessKey: "ak_1", secretKey: "sk_1" });
    const first = await authorization(NOW);
    expect(await authorization(NOW + 60_000)).toBe(first);
    const later = NOW + (TOKEN_SECONDS - REFRESH_SECONDS + 1) * 1000;
    const fresh = await authorization(later);
    expect(fresh).not.toBe(first);
    expect(claims(fresh).exp).toBe(later / 1000 + TOKEN_SECONDS);
  });

  it("signs on the server's clock once a response has shown it", async () => {
    setCredentials({ kind: "pair", accessKey: "ak_1", secretKey: "sk_1" });
    learnClock(new Date(NOW + 120_000).toUTCString(), NOW); // the server is two minutes ahead
    expect(claims(await authorization(NOW)).exp).toBe(NOW / 1000 + 120 + TOKEN_SECONDS);
  });

  it("forgets the old token when the keys change", async () => {
    setCredentials({ kind: "pair", accessKey: "ak_1", secretKey: "sk_1" });
    await authorization(NOW);
    setCredentials({ kind: "pair", accessKey: "ak_2", secretKey: "sk_2" });
    expect(claims(await authorization(NOW)).iss).toBe("ak_2");
  });
});

describe("authHeaders", () => {
  it("sends the CSRF token on unsafe methods only when signed in by cookie", async () => {
    setCredentials({ kind: "session", name: "ada", role: "member", csrfToken: "csrf-1" });
    for (const method of ["GET", "HEAD", "OPTIONS", "get"])
      expect(await authHeaders(method, NOW)).toEqual({});
    for (const method of ["POST", "PUT", "PATCH", "DELETE", "delete"]) {
      expect(await authHeaders(method, NOW)).toEqual({ "X-CSRF-Token": "csrf-1" });
    }
    expect(await authorization(NOW)).toBeNull();
  });

  it("sends the Authorization header on every method when signed in by key, never a CSRF token", async () => {
    setCredentials({ kind: "key", apiKey: "kn_static" });
    expect(await authHeaders("GET", NOW)).toEqual({ Authorization: "Bearer kn_static" });
    expect(await authHeaders("POST", NOW)).toEqual({ Authorization: "Bearer kn_static" });
  });

  it("sends nothing when signed out", async () => {
    expect(await authHeaders("POST", NOW)).toEqual({});
  });
});
