import { describe, expect, it } from "vitest";
import { MAX_BYTES, checkFile, checkSize, sniff, toBase64 } from "../src/lib/images";

const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]);
const JPEG = new Uint8Array([0xff, 0xd8, 0xff, 0xe0]);

describe("picked images are checked as the API checks them", () => {
  it("accepts PNG and JPEG by their bytes, not their names", () => {
    expect(sniff(PNG)).toBe("png");
    expect(sniff(JPEG)).toBe("jpeg");
    expect(sniff(new TextEncoder().encode("GIF89a"))).toBeNull();
    expect(checkFile(new TextEncoder().encode("GIF89a"), "image")).toEqual({
      key: "validation.imageType",
      params: { field: "image" },
    });
  });

  it("refuses files over 10 MiB", () => {
    const big = new Uint8Array(MAX_BYTES + 1);
    big.set(PNG);
    expect(checkFile(big, "image_tail")).toMatchObject({ key: "validation.imageBytes" });
  });

  it("needs 300 px on both sides, and a first frame within 1:2.5 to 2.5:1", () => {
    expect(checkSize(299, 600, "image")).toMatchObject({ key: "validation.imageSmall" });
    expect(checkSize(300, 750, "image")).toBeNull();
    expect(checkSize(300, 751, "image")).toMatchObject({ key: "validation.imageAspect" });
    expect(checkSize(300, 751, "image_tail")).toBeNull();
  });

  it("encodes raw base64 without a data: prefix, in slices for big files", () => {
    expect(toBase64(new TextEncoder().encode("Kinema"))).toBe("S2luZW1h");
    const big = Uint8Array.from({ length: 100_000 }, (_, i) => i & 255);
    expect(atob(toBase64(big)).length).toBe(100_000);
  });
});
