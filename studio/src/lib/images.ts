// Images picked for image-to-video: read in the browser, checked against the API's own limits (JPG or
// PNG, at most 10 MiB, both sides at least 300 px, a first frame within 1:2.5 to 2.5:1) and sent as raw
// base64, without the `data:` prefix the API refuses.
import type { Message } from "../i18n";

export interface Picked {
  name: string;
  base64: string;
  url: string; // an object URL for the preview
  width: number;
  height: number;
  bytes: number;
}

export type ImageField = "image" | "image_tail";
export const MAX_BYTES = 10 * 1024 * 1024;
export const MIN_SIDE = 300;
export const MAX_ASPECT = 2.5;

export function sniff(bytes: Uint8Array): "png" | "jpeg" | null {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    return "png";
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  return null;
}

/** What the API would refuse about an image, before its pixels are read; null when it looks fine. */
export function checkFile(bytes: Uint8Array, field: ImageField): Message | null {
  if (!sniff(bytes)) return { key: "validation.imageType", params: { field } };
  if (bytes.length > MAX_BYTES) return { key: "validation.imageBytes", params: { field } };
  return null;
}

export function checkSize(width: number, height: number, field: ImageField): Message | null {
  if (Math.min(width, height) < MIN_SIDE)
    return { key: "validation.imageSmall", params: { field, width, height } };
  if (field === "image" && Math.max(width, height) > MAX_ASPECT * Math.min(width, height)) {
    return { key: "validation.imageAspect", params: { field, width, height } };
  }
  return null;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000; // String.fromCharCode takes its arguments on the stack: go in slices
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

async function dimensions(blob: Blob): Promise<{ width: number; height: number }> {
  const bitmap = await createImageBitmap(blob);
  const size = { width: bitmap.width, height: bitmap.height };
  bitmap.close();
  return size;
}

/** Read and check a picked or dropped file; throws the Message to show next to the field. */
export async function pickImage(file: Blob, name: string, field: ImageField): Promise<Picked> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const problem = checkFile(bytes, field);
  if (problem) throw problem;
  let size: { width: number; height: number };
  try {
    size = await dimensions(file);
  } catch {
    throw { key: "validation.imageUnreadable", params: { field } } satisfies Message;
  }
  const tooSmall = checkSize(size.width, size.height, field);
  if (tooSmall) throw tooSmall;
  return { name, base64: toBase64(bytes), url: URL.createObjectURL(file), bytes: bytes.length, ...size };
}
