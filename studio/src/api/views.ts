// What the API answers, by hand: the routes return `dict[str, Any]`, so the OpenAPI document has no
// response schemas to generate these from. They mirror kinema.api.views.kinema_task and the models
// route; request types (TaskCreate, list filters) come from the generated ./schema.
import type { components, operations } from "./schema";

export type TaskCreate = components["schemas"]["TaskCreate"];
export type Kind = TaskCreate["kind"];
export type Mode = NonNullable<TaskCreate["mode"]>;
export type AspectRatio = NonNullable<TaskCreate["aspect_ratio"]>;
export type ListQuery = NonNullable<operations["list_tasks_api_v1_tasks_get"]["parameters"]["query"]>;
export type Status = NonNullable<ListQuery["status"]>[number];
export type ErrorBody = components["schemas"]["ErrorBody"];

export const KINDS: readonly Kind[] = ["text2video", "image2video", "extend", "text2image"];
export const ASPECTS: readonly AspectRatio[] = ["16:9", "9:16", "1:1"];
export const ACTIVE: readonly Status[] = ["submitted", "processing"];
export const ENDED: readonly Status[] = ["succeed", "failed", "cancelled"];

export interface Output {
  id: string; // `<task id>-<index>`: what extend takes as video_id
  index: number;
  type: "video" | "image";
  url: string | null;
  poster_url?: string | null;
  duration?: number;
  num_frames?: number;
  fps?: number;
  width: number;
  height: number;
  seed: number;
}

export interface TaskView {
  id: string;
  external_task_id: string | null;
  kind: Kind;
  model: string;
  status: Status;
  progress: number; // 0..1 over all stages
  stage: string;
  error: string | null;
  attempt: number;
  max_attempts: number;
  priority: number;
  cancel_requested: boolean;
  preview_url: string | null;
  params: Record<string, unknown>; // the request as the worker sees it; media fields end in `_url`
  parent_video: { id: string; duration: number | string | null } | null;
  outputs: Output[];
  created_at: number; // milliseconds since the epoch
  updated_at: number;
  started_at: number | null;
  finished_at: number | null;
  expires_at: number | null;
}

export interface TaskList {
  tasks: TaskView[];
  total: number;
  offset: number;
}

export interface Capabilities {
  model: string;
  family: string;
  kinds: Kind[];
  first_last_frame: boolean;
  canvases: Partial<Record<AspectRatio, [number, number]>>;
  fps: number;
  max_frames: number;
  steps: Record<Mode, number>;
  guidance: number;
  guidance_range: [number, number];
  description: string;
}

export interface ModelView {
  id: string;
  family: string;
  online: boolean;
  workers: number;
  error: string | null;
  capabilities: Capabilities | null;
}

export function isActive(task: TaskView): boolean {
  return task.status === "submitted" || task.status === "processing";
}
