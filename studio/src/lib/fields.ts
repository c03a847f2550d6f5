// The create form's fields, named as the API names them, and the mapping from an API refusal
// (400 / 1201 "<field>: <why>", or "<field> <value> is outside …") to the input that caused it.
export const FIELDS = [
  "prompt",
  "negative_prompt",
  "model",
  "aspect_ratio",
  "duration",
  "seconds",
  "mode",
  "n",
  "seed",
  "guidance_scale",
  "num_inference_steps",
  "image",
  "image_tail",
  "video_id",
] as const;
export type Field = (typeof FIELDS)[number];

// Spec-level names that the API reports for a field the form calls differently.
const ALIASES: Record<string, Field> = { video: "video_id", image2video: "image" };

/** The form field an API error message is about, or null when it concerns the request as a whole. */
export function fieldOf(message: string): Field | null {
  const match = /^([a-z][a-z0-9_]*)(?=[\s:,.]|$)/.exec(message.trim());
  if (!match) return null;
  const name = match[1];
  if ((FIELDS as readonly string[]).includes(name)) return name as Field;
  return ALIASES[name] ?? null;
}
