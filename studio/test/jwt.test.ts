import { describe, expect, it } from "vitest";
import { base64url, hmac, signJwt } from "../src/auth/jwt";
import { hmacSha256, sha256 } from "../src/auth/sha256";

const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
const utf8 = (text: string) => new TextEncoder().encode(text);

describe("signJwt", () => {
  it("signs exactly what PyJWT signs for the same claims and secret", async () => {
    // jwt.encode({"iss": "ak_test", "exp": 2000000000, "nbf": 1999998195}, "sk_secret_value", "HS256")
    const token = await signJwt({ iss: "ak_test", exp: 2000000000, nbf: 1999998195 }, "sk_secret_value");
    expect(token).toBe(
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha190ZXN0IiwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE5OTk5OTgxOTV9" +
        ".NeTdifFkcrnEHPpLW6f_aE0wcyP7e8ZnTSt8UFc6xA0",
    );
  });

  it("writes base64url without padding", () => {
    expect(base64url(new Uint8Array([251, 255, 191]))).toBe("-_-_");
    expect(base64url(new Uint8Array([1]))).toBe("AQ");
  });
});

describe("the plain SHA-256 used outside secure contexts", () => {
  it("matches the FIPS 180-4 test vectors", () => {
    expect(hex(sha256(new Uint8Array()))).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(hex(sha256(utf8("a".repeat(1000))))).toBe(
      "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3",
    );
  });

  it("gives the HMAC that RFC 4231-style tools give", () => {
    const mac = hmacSha256(utf8("key"), utf8("The quick brown fox jumps over the lazy dog"));
    expect(hex(mac)).toBe("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  });

  it("agrees with WebCrypto on every message length around the block edges, and on long keys", async () => {
    for (const [keyLength, length] of [
      [16, 0],
      [32, 55],
      [32, 56],
      [64, 63],
      [65, 64],
      [100, 119],
      [200, 200],
    ]) {
      const key = Uint8Array.from({ length: keyLength }, (_, i) => (i * 7 + 3) & 255);
      const message = Uint8Array.from({ length }, (_, i) => (i * 31 + 11) & 255);
      expect(hex(hmacSha256(key, message))).toBe(hex(await hmac(key, message)));
    }
  });
});
