// HS256 JSON Web Tokens, signed in the browser: WebCrypto HMAC where the page is a secure context,
// the plain implementation in ./sha256 elsewhere. The server accepts HS256 only (docs/service.md).
import { hmacSha256 } from "./sha256";

export interface Claims {
  iss: string; // the access key
  exp: number; // seconds since the epoch
  nbf: number;
}

const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function hmac(key: Uint8Array, message: Uint8Array): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return hmacSha256(key, message);
  const imported = await subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await subtle.sign("HMAC", imported, message as BufferSource));
}

export async function signJwt(claims: Claims, secret: string): Promise<string> {
  const header = base64url(encoder.encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));
  const payload = base64url(encoder.encode(JSON.stringify(claims)));
  const input = `${header}.${payload}`;
  const signature = await hmac(encoder.encode(secret), encoder.encode(input));
  return `${input}.${base64url(signature)}`;
}
