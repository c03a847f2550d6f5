// The tasks this tab knows, kept live: active tasks are listed every few seconds, and up to
// FOLLOW_LIMIT of them are followed over their event stream for smooth progress and preview frames
// (browsers allow about six connections per server, so not every queued task gets a stream).
import { computed, signal } from "@preact/signals";
import { ApiError, kinema } from "../api/client";
import { followTask } from "../api/events";
import { ACTIVE, ENDED, isActive, type TaskCreate, type TaskView } from "../api/views";
import { t } from "../i18n";
import { href } from "../router";
import { toast } from "./toasts";

export const FOLLOW_LIMIT = 3;
const POLL_ACTIVE_MS = 1500;
const POLL_IDLE_MS = 5000;

export const tasks = signal<ReadonlyMap<string, TaskView>>(new Map());
/** Bumped whenever a task finishes or disappears, so lists of results reload. */
export const libraryStamp = signal(0);
/** Tasks created from this tab, newest first. */
export const createdHere = signal<string[]>([]);
/** A clock for elapsed times; ticks every second while something runs. */
export const now = signal(Date.now());

export const active = computed(() =>
  [...tasks.value.values()].filter(isActive).sort((a, b) => a.created_at - b.created_at),
);
export const ended = computed(() =>
  [...tasks.value.values()]
    .filter((task) => !isActive(task))
    .sort((a, b) => (b.finished_at ?? b.updated_at) - (a.finished_at ?? a.updated_at)),
);

/** Keep the newest view of each task; an older view arriving late (a slow poll) is ignored. */
export function upsert(task: TaskView): void {
  const old = tasks.value.get(task.id);
  if (old && old.updated_at > task.updated_at) return;
  if (old && isActive(old) && !isActive(task)) {
    libraryStamp.value++;
    if (createdHere.value.includes(task.id)) announceEnd(task);
  }
  const next = new Map(tasks.value);
  next.set(task.id, task);
  tasks.value = next;
  reconcileFollowers();
}

function announceEnd(task: TaskView): void {
  const prompt = String(task.params.prompt ?? "") || t(`kind.${task.kind}`);
  if (task.status === "succeed") {
    const open = { href: href({ screen: "library", taskId: task.id, index: 0 }), label: t("queue.open") };
    toast(t("toast.done", { prompt }), { tone: "success", link: open });
  } else if (task.status === "failed") {
    toast(t("toast.failed", { prompt }), { tone: "error", link: { href: "#/queue", label: t("nav.queue") } });
  }
}

export function forget(id: string): void {
  if (!tasks.value.has(id)) return;
  const next = new Map(tasks.value);
  next.delete(id);
  tasks.value = next;
  libraryStamp.value++;
}

/** Which active tasks get a stream: running ones first, then the oldest queued. */
export function chooseFollowed(list: readonly TaskView[], limit: number = FOLLOW_LIMIT): string[] {
  const running = list.filter((t) => t.status === "processing");
  const queued = list.filter((t) => t.status === "submitted");
  const byAge = (a: TaskView, b: TaskView) => a.created_at - b.created_at;
  return [...running.sort(byAge), ...queued.sort(byAge)].slice(0, limit).map((t) => t.id);
}

// --- actions ------------------------------------------------------------------------------------

export async function createTask(body: TaskCreate): Promise<TaskView> {
  const task = await kinema.create(body);
  createdHere.value = [task.id, ...createdHere.value];
  upsert(task);
  return task;
}

export async function cancelTask(id: string): Promise<void> {
  upsert(await kinema.cancel(id));
}

export async function retryTask(id: string): Promise<void> {
  upsert(await kinema.retry(id));
}

export async function deleteTask(id: string): Promise<void> {
  await kinema.remove(id);
  forget(id);
}

export async function refreshTask(id: string): Promise<TaskView | null> {
  try {
    const task = await kinema.task(id);
    upsert(task);
    return task;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      forget(id);
      return null;
    }
    throw error;
  }
}

// --- keeping it live ----------------------------------------------------------------------------

const followers = new Map<string, AbortController>();
let pollTimer: ReturnType<typeof setTimeout> | undefined;
let tickTimer: ReturnType<typeof setInterval> | undefined;
let running = false;

function reconcileFollowers(): void {
  if (!running) return;
  const wanted = new Set(chooseFollowed(active.value));
  for (const [id, controller] of followers) {
    if (!wanted.has(id)) {
      controller.abort();
      followers.delete(id);
    }
  }
  for (const id of wanted) if (!followers.has(id)) follow(id);
  if (active.value.length && tickTimer === undefined) {
    tickTimer = setInterval(() => (now.value = Date.now()), 1000);
  } else if (!active.value.length && tickTimer !== undefined) {
    clearInterval(tickTimer);
    tickTimer = undefined;
  }
}

function follow(id: string): void {
  const controller = new AbortController();
  followers.set(id, controller);
  const again = (delay: number) =>
    setTimeout(() => {
      if (followers.get(id) !== controller) return;
      followers.delete(id);
      reconcileFollowers();
    }, delay);
  followTask(id, upsert, controller.signal).then(
    (end) => {
      if (end === "deleted") forget(id);
      again(end === "closed" ? 500 : 0);
    },
    () => {
      if (!controller.signal.aborted) again(2000); // a dropped connection: reconnect shortly
    },
  );
}

async function poll(): Promise<void> {
  const list = await kinema.list({ status: [...ACTIVE], limit: 100 });
  const seen = new Set(list.tasks.map((t) => t.id));
  list.tasks.forEach(upsert);
  // A task that left the active list ended between two polls: fetch its final state.
  await Promise.all(active.value.filter((t) => !seen.has(t.id)).map((t) => refreshTask(t.id)));
}

async function pollLoop(): Promise<void> {
  if (!running) return;
  try {
    await poll();
  } catch {
    // the next round tries again; screens show their own errors
  }
  if (!running) return;
  const hidden = globalThis.document?.visibilityState === "hidden";
  const delay = active.value.length && !hidden ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  pollTimer = setTimeout(() => void pollLoop(), delay);
}

/** The last few ended tasks, for the queue's "recently ended" list. */
export async function loadRecent(limit = 8): Promise<void> {
  const list = await kinema.list({ status: [...ENDED], limit });
  list.tasks.forEach(upsert);
}

export function startSync(): void {
  if (running) return;
  running = true;
  void pollLoop();
}

export function stopSync(): void {
  running = false;
  clearTimeout(pollTimer);
  clearInterval(tickTimer);
  tickTimer = undefined;
  for (const controller of followers.values()) controller.abort();
  followers.clear();
  tasks.value = new Map();
  createdHere.value = [];
}
