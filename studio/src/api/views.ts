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

// --- the account (kinema.api.account, kinema.api.session) -----------------------------------------

export type SignInBody = components["schemas"]["SignIn"];
export type PasswordChange = components["schemas"]["PasswordChange"];
export type KeyKind = NonNullable<components["schemas"]["KeyCreate"]["kind"]>;

export interface AccountRef {
  account_id: string;
  name: string;
  role: string;
}

/** A browser's sign-in: what POST and GET /api/v1/session answer. */
export interface SessionView {
  session_id: string;
  account_id: string;
  created_at: number;
  expires_at: number;
  user_agent: string;
  csrf_token: string;
  account: AccountRef | null;
}

export interface PlanView {
  name: string;
  daily_free_credits?: number;
  monthly_credits?: number;
  video_concurrency?: number | null;
  image_concurrency?: number | null;
  priority?: number;
  allowed_models?: string[] | null;
  allowed_modes?: string[];
  max_duration_s?: number;
  requests_per_minute?: number | null;
  metered?: boolean;
}

export interface Slots {
  used: number;
  limit: number | null;
}

export interface AccountView extends AccountRef {
  disabled: boolean;
  created_at: number;
  plan: PlanView;
  balance: number;
  has_password: boolean;
  concurrency: { video: Slots; image: Slots };
}

export type LedgerKind = "grant" | "purchase" | "charge" | "refund" | "expiry";

export interface LedgerEntry {
  entry_id: string;
  kind: LedgerKind;
  amount: number; // credits; negative for charges and expiries
  pack_id: string | null;
  task_id: string | null;
  created_at: number;
  note: string;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  total: number;
}

export interface UsageRow {
  task_id: string;
  kind: Kind;
  model: string;
  mode: string;
  seconds: number;
  images: number;
  credits: number;
  charged_at: number;
}

export interface KeyView {
  key_id: string;
  kind: "pair" | "static";
  access_key: string | null;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
}

/** A key as it is made: its secret is in this answer only. */
export type NewKey =
  | { key_id: string; kind: "pair"; access_key: string; secret_key: string }
  | { key_id: string; kind: "static"; api_key: string };

export interface WebSession {
  session_id: string;
  created_at: number;
  expires_at: number;
  user_agent: string;
  current: boolean;
}
