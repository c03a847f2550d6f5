import { afterEach, describe, expect, it } from "vitest";
import type { VNode } from "preact";
import spec from "../openapi.json?raw";
import { ApiError, headlineOf, problemOf } from "../src/api/refusal";
import { FieldError } from "../src/components/FieldError";
import { Say } from "../src/components/Say";
import { dictionaries, locale, shown } from "../src/i18n";

/** Every Kling code the server documents in its OpenAPI error responses ("401 with 1000-1004", …). */
function documentedCodes(): number[] {
  const codes = new Set<number>();
  for (const [, description] of spec.matchAll(/"description": "((?:Refused|500 with)[^"]*)"/g)) {
    for (const [, low, high] of description.matchAll(/\b(\d{4})(?:-(\d{4}))?\b/g)) {
      for (let code = Number(low); code <= Number(high ?? low); code++) codes.add(code);
    }
  }
  return [...codes].sort();
}

/** The text a component shows, rendered without a DOM (the components here use no hooks). */
function textOf(node: unknown): string {
  if (node === null || node === undefined || typeof node === "boolean") return "";
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(textOf).filter(Boolean).join("|");
  const { type, props } = node as VNode<{ children?: unknown }>;
  if (typeof type === "function") return textOf((type as (p: unknown) => unknown)(props));
  return textOf(props.children);
}

const CREDITS = "this task costs 40 credits but account 'ann' has 10 left; buy or be granted more credits";

afterEach(() => {
  locale.value = "en";
});

describe("refusal headlines", () => {
  it("exist in English and Chinese for every code the server sends", () => {
    const codes = documentedCodes();
    expect(codes).toEqual(expect.arrayContaining([1000, 1004, 1102, 1201, 1303, 5002]));
    expect(codes.length).toBeGreaterThanOrEqual(18);
    for (const code of codes) {
      const key = headlineOf(400, code);
      expect(key, `code ${code}`).toBe(`refusal.${code}`);
      expect(dictionaries.en[key].trim(), `en ${code}`).not.toBe("");
      expect(dictionaries["zh-CN"][key], `zh ${code}`).toMatch(/[\u4e00-\u9fff]/);
    }
  });

  it("fall back by the code's range, then by the HTTP status", () => {
    expect(headlineOf(401, 1050)).toBe("refusal.auth");
    expect(headlineOf(429, 1101)).toBe("refusal.account");
    expect(headlineOf(400, 1299)).toBe("refusal.request");
    expect(headlineOf(429, 1304)).toBe("refusal.limit");
    expect(headlineOf(500, 5099)).toBe("refusal.server");
    expect(headlineOf(502, 0)).toBe("refusal.server"); // a proxy's answer, without the envelope
    expect(headlineOf(418, 0)).toBe("refusal.other");
    expect(headlineOf(400, 4242)).toBe("refusal.other");
    expect(headlineOf(0, 0)).toBe("error.network");
  });

  it("keep the server's sentence as the detail, and say 'unreachable' without one", () => {
    expect(problemOf(new ApiError(429, 1102, CREDITS))).toEqual({ key: "refusal.1102", detail: CREDITS });
    expect(problemOf(new ApiError(0, 0, "Failed to fetch"))).toEqual({ key: "error.network" });
    expect(problemOf(new TypeError("Failed to fetch"))).toEqual({ key: "error.network" });
  });
});

describe("a refusal on screen", () => {
  const credits = problemOf(new ApiError(429, 1102, CREDITS));
  const field = problemOf(new ApiError(400, 1201, "prompt: must not be empty"));

  it("leads with the Chinese headline and keeps the server's sentence under it", () => {
    locale.value = "zh-CN";
    expect(shown(credits)).toEqual({ headline: "点数不足", detail: CREDITS });
    expect(textOf(Say({ message: credits }))).toBe(`点数不足|${CREDITS}`);
    const atField = textOf(FieldError({ id: "f-prompt-error", message: field }));
    expect(atField).toBe("参数无效|prompt: must not be empty");
  });

  it("in English, adds the headline above a form but not next to the field the sentence names", () => {
    expect(shown(credits)).toEqual({ headline: "Not enough credits", detail: CREDITS });
    expect(textOf(FieldError({ id: "f-prompt-error", message: field }))).toBe("prompt: must not be empty");
  });

  it("shows a message without a detail as its text alone", () => {
    locale.value = "zh-CN";
    expect(textOf(Say({ message: { key: "refusal.5001" } }))).toBe("服务器暂时不可用");
  });
});
