// The create form as data: what the user has chosen, turned into a TaskCreate body for the API (only
// the fields the kind uses: the API refuses the others), or into messages next to the fields.
import { signal } from "@preact/signals";
import type { AspectRatio, Kind, Mode, ModelView, Output, TaskCreate, TaskView } from "../api/views";
import type { Message } from "../i18n";
import type { Field } from "../lib/fields";
import type { Picked } from "../lib/images";
import { usable } from "./models";

export interface Draft {
  kind: Kind;
  model: string;
  prompt: string;
  negative: string;
  aspect: AspectRatio;
  duration: number; // seconds (text2video, image2video)
  seconds: number; // seconds to add (extend)
  mode: Mode;
  n: number;
  seed: string; // empty: the server draws one
  guidance: number | null; // null: the model's default
  steps: string; // empty: the model's default for the mode
  image: Picked | null;
  imageTail: Picked | null;
  videoId: string | null;
}

export type FieldErrors = Partial<Record<Field, Message>>;

export const DURATIONS = [5, 10, 15, 20, 30, 60];
export const EXTEND_SECONDS = [5, 10, 15, 20, 30];
export const MAX_PROMPT = 2500;
export const MAX_DURATION = 180;
export const MAX_SEED = Number.MAX_SAFE_INTEGER; // larger seeds would not survive JSON in a browser
export const SEED_RANGE = 2 ** 31; // what the server draws from, and so what the dice draw from

export function blankDraft(): Draft {
  return {
    kind: "text2video",
    model: "builtin",
    prompt: "",
    negative: "",
    aspect: "16:9",
    duration: 5,
    seconds: 5,
    mode: "std",
    n: 1,
    seed: "",
    guidance: null,
    steps: "",
    image: null,
    imageTail: null,
    videoId: null,
  };
}

export const draft = signal<Draft>(blankDraft());

export function patchDraft(change: Partial<Draft>): void {
  draft.value = { ...draft.value, ...change };
}

export function randomSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0] % SEED_RANGE;
}

export function maxDraws(kind: Kind): number {
  return kind === "text2image" ? 9 : 4;
}

const WHOLE = /^\d+$/;

/** The request body for `d`, or the messages that keep it from being sent. */
export function toRequest(d: Draft, model: ModelView | null): { body: TaskCreate } | { errors: FieldErrors } {
  const errors: FieldErrors = {};
  const body: TaskCreate = { kind: d.kind, model: d.model, prompt: d.prompt, mode: d.mode, n: d.n };
  if (d.negative.trim()) body.negative_prompt = d.negative;
  if ((d.kind === "text2video" || d.kind === "text2image") && !d.prompt.trim()) {
    errors.prompt = { key: "validation.promptRequired" };
  }
  if (model && !usable(model, d.kind)) errors.model = { key: "validation.model" };
  if (d.n < 1 || d.n > maxDraws(d.kind))
    errors.n = { key: "validation.n", params: { max: maxDraws(d.kind) } };
  const seed = d.seed.trim();
  if (seed) {
    if (WHOLE.test(seed) && Number(seed) <= MAX_SEED) body.seed = Number(seed);
    else errors.seed = { key: "validation.seed", params: { max: MAX_SEED } };
  }
  const steps = d.steps.trim();
  if (steps) {
    if (WHOLE.test(steps) && Number(steps) >= 1 && Number(steps) <= 200)
      body.num_inference_steps = Number(steps);
    else errors.num_inference_steps = { key: "validation.steps" };
  }
  const range = model?.capabilities?.guidance_range;
  if (d.guidance !== null) {
    if (range && (d.guidance < range[0] || d.guidance > range[1])) {
      errors.guidance_scale = { key: "validation.guidance", params: { low: range[0], high: range[1] } };
    } else body.guidance_scale = d.guidance;
  }
  if (d.kind === "text2video" || d.kind === "image2video") {
    if (!(d.duration > 0 && d.duration <= MAX_DURATION)) {
      errors.duration = { key: "validation.duration", params: { min: 1, max: MAX_DURATION } };
    } else body.duration = d.duration;
  }
  if (d.kind === "text2video" || d.kind === "text2image") body.aspect_ratio = d.aspect;
  if (d.kind === "image2video") {
    if (!d.image && !d.imageTail) errors.image = { key: "validation.imageRequired" };
    if (d.image) body.image = d.image.base64;
    if (d.imageTail) body.image_tail = d.imageTail.base64;
  }
  if (d.kind === "extend") {
    if (!d.videoId) errors.video_id = { key: "validation.videoRequired" };
    else body.video_id = d.videoId;
    body.seconds = d.seconds;
  }
  return Object.keys(errors).length ? { errors } : { body };
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function number(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

/** The form settings that made `task` (and `output`'s seed), for "reuse settings"; images are separate. */
export function fromTask(task: TaskView, output?: Output): Partial<Draft> {
  const p = task.params;
  const aspect = ["16:9", "9:16", "1:1"].includes(text(p.aspect_ratio))
    ? (p.aspect_ratio as AspectRatio)
    : "16:9";
  const seed = output?.seed ?? (typeof p.seed === "number" ? p.seed : null);
  return {
    kind: task.kind,
    model: task.model,
    prompt: text(p.prompt),
    negative: text(p.negative_prompt),
    aspect,
    duration: number(p.duration, 5),
    seconds: number(p.seconds, 5),
    mode: p.mode === "pro" ? "pro" : "std",
    n: number(p.n, 1),
    seed: seed === null ? "" : String(seed),
    guidance: typeof p.guidance_scale === "number" ? p.guidance_scale : null,
    steps: typeof p.num_inference_steps === "number" ? String(p.num_inference_steps) : "",
    image: null,
    imageTail: null,
    videoId: task.kind === "extend" ? (task.parent_video?.id ?? null) : null,
  };
}
