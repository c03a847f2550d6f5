import { describe, expect, it } from "vitest";
import type { ModelView, TaskView } from "../src/api/views";
import { blankDraft, fromTask, toRequest, type Draft } from "../src/state/draft";
import type { Picked } from "../src/lib/images";

const builtin: ModelView = {
  id: "builtin",
  family: "builtin",
  online: true,
  workers: 1,
  error: null,
  capabilities: {
    model: "builtin",
    family: "builtin",
    kinds: ["text2video", "image2video", "extend", "text2image"],
    first_last_frame: true,
    canvases: {},
    fps: 8,
    max_frames: 16,
    steps: { std: 12, pro: 24 },
    guidance: 4,
    guidance_range: [1, 12],
    description: "",
  },
};
const picked: Picked = {
  name: "a.png",
  base64: "iVBORw0KGgo=",
  url: "blob:x",
  width: 640,
  height: 360,
  bytes: 9,
};

function draft(change: Partial<Draft>): Draft {
  return { ...blankDraft(), prompt: "a red circle", ...change };
}

function body(d: Draft) {
  const built = toRequest(d, builtin);
  if ("errors" in built) throw new Error(JSON.stringify(built.errors));
  return built.body;
}

describe("toRequest", () => {
  it("sends only the fields each kind uses (the API refuses the others)", () => {
    const everything = {
      image: picked,
      imageTail: picked,
      videoId: "t-0",
      seed: "7",
      guidance: 5,
      steps: "20",
    };
    expect(Object.keys(body(draft({ ...everything, kind: "text2video" }))).sort()).toEqual([
      "aspect_ratio",
      "duration",
      "guidance_scale",
      "kind",
      "mode",
      "model",
      "n",
      "num_inference_steps",
      "prompt",
      "seed",
    ]);
    expect(body(draft({ ...everything, kind: "image2video" }))).toMatchObject({
      image: picked.base64,
      image_tail: picked.base64,
    });
    expect(body(draft({ ...everything, kind: "image2video" }))).not.toHaveProperty("aspect_ratio");
    const extend = body(draft({ ...everything, kind: "extend" }));
    expect(extend).toMatchObject({ video_id: "t-0", seconds: 5 });
    expect(extend).not.toHaveProperty("duration");
    expect(extend).not.toHaveProperty("image");
    const image = body(draft({ ...everything, kind: "text2image", n: 9 }));
    expect(image).not.toHaveProperty("duration");
    expect(image.n).toBe(9);
  });

  it("leaves seed, guidance and steps to the server when they are not set", () => {
    const sent = body(draft({}));
    expect(sent).not.toHaveProperty("seed");
    expect(sent).not.toHaveProperty("guidance_scale");
    expect(sent).not.toHaveProperty("num_inference_steps");
    expect(sent).not.toHaveProperty("negative_prompt");
  });

  it("refuses with a message per field, in the API's field names", () => {
    const built = toRequest(draft({ prompt: " ", seed: "-1", steps: "201", guidance: 13, n: 5 }), builtin);
    expect("errors" in built && Object.keys(built.errors).sort()).toEqual([
      "guidance_scale",
      "n",
      "num_inference_steps",
      "prompt",
      "seed",
    ]);
  });

  it("needs an image for image-to-video and a video for extend, but no prompt", () => {
    const i2v = toRequest(draft({ kind: "image2video", prompt: "" }), builtin);
    expect("errors" in i2v && i2v.errors).toEqual({ image: { key: "validation.imageRequired" } });
    const ext = toRequest(draft({ kind: "extend", prompt: "" }), builtin);
    expect("errors" in ext && ext.errors).toEqual({ video_id: { key: "validation.videoRequired" } });
  });

  it("refuses a model that is offline", () => {
    const built = toRequest(draft({}), { ...builtin, online: false });
    expect("errors" in built && built.errors.model).toEqual({ key: "validation.model" });
  });
});

describe("fromTask: reuse settings", () => {
  it("takes the request's settings and the draw's own seed", () => {
    const task = {
      id: "42",
      kind: "text2video",
      model: "builtin",
      parent_video: null,
      params: {
        prompt: "p",
        negative_prompt: "n",
        mode: "pro",
        aspect_ratio: "9:16",
        duration: 10,
        n: 2,
        seed: 1,
        guidance_scale: 6,
      },
    } as unknown as TaskView;
    const output = { id: "42-1", index: 1, type: "video", url: "u", width: 1, height: 1, seed: 2 } as const;
    expect(fromTask(task, output)).toMatchObject({
      kind: "text2video",
      prompt: "p",
      negative: "n",
      mode: "pro",
      aspect: "9:16",
      duration: 10,
      n: 2,
      seed: "2",
      guidance: 6,
      steps: "",
    });
  });

  it("points an extension at the video it extended", () => {
    const task = {
      id: "43",
      kind: "extend",
      model: "builtin",
      parent_video: { id: "42-0", duration: 5 },
      params: { seconds: 10 },
    } as unknown as TaskView;
    expect(fromTask(task)).toMatchObject({ kind: "extend", videoId: "42-0", seconds: 10 });
  });
});
