import { describe, expect, it } from "vitest";
import { fieldOf } from "../src/lib/fields";

describe("fieldOf: which input an API refusal is about", () => {
  it.each([
    ["prompt: prompt is empty; describe the video you want", "prompt"],
    ["n: a video request draws at most 4 candidates", "n"],
    ["guidance_scale 40 is outside 1..12 for 'builtin'", "guidance_scale"],
    ["duration: Input should be less than or equal to 180", "duration"],
    ["image: the image is 200×200 pixels; width and height must both be at least 300 px", "image"],
    ["image_tail: the file is a GIF image, not JPEG or PNG", "image_tail"],
    ["video_id 'x-0' does not exist; use a video id from a finished task", "video_id"],
    ["model 'wan' cannot do extend; pick a model that lists it", "model"],
    ["image, image_tail cannot be used with kind 'extend'; leave it out", "image"],
    ["image2video needs image (first frame), image_tail or both", "image"],
    ["num_inference_steps: Input should be greater than or equal to 1", "num_inference_steps"],
  ])("%s -> %s", (message, field) => {
    expect(fieldOf(message)).toBe(field);
  });

  it.each([
    "height and width must be multiples of 8 for 'wan'; got 270x480",
    "callback_url must be an http(s) URL of at most 2048 characters",
    "the body must be a JSON object; check Content-Type and syntax",
    "",
  ])("names no field for %j", (message) => {
    expect(fieldOf(message)).toBeNull();
  });
});
