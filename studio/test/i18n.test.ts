import { describe, expect, it } from "vitest";
import { dictionaries, detect, placeholders, translate } from "../src/i18n";
import { en } from "../src/i18n/en";

describe("translations", () => {
  it("use the same placeholders in every language", () => {
    for (const [locale, dictionary] of Object.entries(dictionaries)) {
      for (const key of Object.keys(en) as (keyof typeof en)[]) {
        expect(placeholders(dictionary[key]), `${locale} ${key}`).toEqual(placeholders(en[key]));
        expect(dictionary[key].trim(), `${locale} ${key}`).not.toBe("");
      }
    }
  });

  it("fill placeholders and leave unknown ones visible", () => {
    expect(translate("zh-CN", "queue.elapsed", { time: "0:05" })).toBe("已用 0:05");
    expect(translate("en", "queue.elapsed")).toBe("{time} elapsed");
  });

  it("follow the browser's preferred language", () => {
    expect(detect(["zh-TW", "en"])).toBe("zh-CN");
    expect(detect(["fr-FR", "en-GB"])).toBe("en");
    expect(detect(["fr"])).toBe("en");
  });
});
