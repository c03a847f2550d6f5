import { describe, expect, it } from "vitest";
import { browserName, credits, lastDays } from "../src/lib/format";
import { checkPasswordForm, passwordFieldOf } from "../src/lib/password";

describe("credit amounts", () => {
  it("show ledger entries signed, with a real minus sign, and balances plain", () => {
    expect(credits(66, "en", true)).toBe("+66");
    expect(credits(-14, "en", true)).toBe("−14");
    expect(credits(0, "en", true)).toBe("0");
    expect(credits(3000, "en")).toBe("3,000");
    expect(credits(-5, "en")).toBe("−5");
    expect(credits(1234.5, "zh-CN", true)).toBe("+1,234.5");
  });

  it("cover the last 30 days up to now", () => {
    expect(lastDays(30, 40 * 86_400_000)).toEqual({ start: 10 * 86_400_000, end: 40 * 86_400_000 });
  });
});

describe("the change-password form", () => {
  const rules = { name: "ada", needsCurrent: true };

  it("passes a good change", () => {
    expect(checkPasswordForm({ current: "old", next: "long enough", repeat: "long enough" }, rules)).toEqual(
      {},
    );
  });

  it("asks for the current password only when the account has one", () => {
    const form = { current: "", next: "long enough", repeat: "long enough" };
    expect(checkPasswordForm(form, rules).current).toEqual({ key: "password.currentRequired" });
    expect(checkPasswordForm(form, { ...rules, needsCurrent: false })).toEqual({});
  });

  it("refuses short, long, blank and name-like passwords, as the server does", () => {
    const next = (value: string) =>
      checkPasswordForm({ current: "x", next: value, repeat: value }, rules).next;
    expect(next("short")).toEqual({ key: "password.tooShort", params: { min: 8 } });
    expect(next("x".repeat(257))).toEqual({ key: "password.tooLong", params: { max: 256 } });
    expect(next("        ")).toEqual({ key: "password.blank" });
    expect(checkPasswordForm({ current: "x", next: "Adaadaada", repeat: "Adaadaada" }, rules)).toEqual({});
    const named = { name: "ada lovelace", needsCurrent: false };
    expect(
      checkPasswordForm({ current: "", next: "Ada Lovelace", repeat: "Ada Lovelace" }, named).next,
    ).toEqual({
      key: "password.isName",
    });
    expect(next("x".repeat(256))).toBeUndefined();
  });

  it("asks for the same new password twice", () => {
    const errors = checkPasswordForm({ current: "x", next: "long enough", repeat: "long enougH" }, rules);
    expect(errors).toEqual({ repeat: { key: "password.mismatch" } });
  });

  it("puts the server's refusal next to the field it names", () => {
    expect(passwordFieldOf("current_password: is not the account's password")).toBe("current");
    expect(passwordFieldOf("password: use at least 8 characters (a few words are easiest)")).toBe("next");
    expect(passwordFieldOf("new_password: String should have at most 256 characters")).toBe("next");
    expect(passwordFieldOf("accounts are not enabled on this server")).toBeNull();
  });
});

describe("signed-in browsers", () => {
  it("are named by browser and system", () => {
    const chrome =
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36";
    expect(browserName(chrome)).toBe("Chrome · Linux");
    const firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
    expect(browserName(firefox)).toBe("Firefox · Windows");
    const safari =
      "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
    expect(browserName(safari)).toBe("Safari · iOS");
    expect(browserName("curl/8.5")).toBe("curl/8.5");
    expect(browserName("")).toBe("?");
  });
});
