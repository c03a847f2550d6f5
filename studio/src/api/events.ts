// The task event stream (`GET /api/v1/tasks/{id}/events`, Server-Sent Events) read with fetch, because
// EventSource cannot send an Authorization header (a session cookie goes along with any same-origin
// request). Each `task` event carries the whole task view.
import { authHeaders } from "../auth/session";
import type { paths } from "./schema";
import type { TaskView } from "./views";

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

const EVENTS: keyof paths = "/api/v1/tasks/{task_id}/events";

/** Split complete events off the front of `buffer`; what is left is an event still arriving. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const text = buffer.replace(/\r\n?/g, "\n");
  const blocks = text.split("\n\n");
  const rest = blocks.pop() ?? "";
  const events: SseEvent[] = [];
  for (const block of blocks) {
    const event: SseEvent = { event: "message", data: "" };
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") event.event = value;
      else if (name === "data") data.push(value);
      else if (name === "id") event.id = value;
    }
    if (data.length || event.event !== "message") {
      event.data = data.join("\n");
      events.push(event);
    }
  }
  return { events, rest };
}

export type StreamEnd = "finished" | "deleted" | "closed";

/** Follow one task until it finishes, is deleted, or the connection ends; errors throw. */
export async function followTask(
  id: string,
  onTask: (task: TaskView) => void,
  signal: AbortSignal,
): Promise<StreamEnd> {
  const headers = { Accept: "text/event-stream", ...(await authHeaders("GET")) };
  const url = EVENTS.replace("{task_id}", encodeURIComponent(id));
  const response = await fetch(url, { headers, signal, cache: "no-store", credentials: "same-origin" });
  if (!response.ok || !response.body) throw new Error(`event stream answered ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return "closed";
    const parsed = parseSse(buffer + value);
    buffer = parsed.rest;
    for (const event of parsed.events) {
      if (event.event === "deleted") return "deleted";
      if (event.event !== "task") continue;
      const task = JSON.parse(event.data) as TaskView;
      onTask(task);
      if (task.status !== "submitted" && task.status !== "processing") {
        await reader.cancel();
        return "finished";
      }
    }
  }
}
