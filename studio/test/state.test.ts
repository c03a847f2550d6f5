import { describe, expect, it } from "vitest";
import type { TaskView } from "../src/api/views";
import { clock, since } from "../src/lib/format";
import { href, parseRoute } from "../src/router";
import { active, chooseFollowed, libraryStamp, tasks, upsert } from "../src/state/tasks";

function task(id: string, status: TaskView["status"], created: number, updated = created): TaskView {
  return {
    id,
    status,
    created_at: created,
    updated_at: updated,
    progress: 0,
    outputs: [],
    params: {},
  } as unknown as TaskView;
}

describe("the task cache", () => {
  it("keeps the newest view of a task and ignores a late, older one", () => {
    upsert(task("a", "processing", 1, 10));
    upsert(task("a", "submitted", 1, 5));
    expect(tasks.value.get("a")?.status).toBe("processing");
  });

  it("tells the library to reload when a task finishes", () => {
    upsert(task("b", "processing", 2, 10));
    const before = libraryStamp.value;
    upsert(task("b", "succeed", 2, 20));
    expect(libraryStamp.value).toBe(before + 1);
    expect(active.value.map((t) => t.id)).not.toContain("b");
  });

  it("streams running tasks first, then the oldest queued, at most three", () => {
    const list = [
      task("q1", "submitted", 1),
      task("q2", "submitted", 2),
      task("r", "processing", 3),
      task("q3", "submitted", 4),
    ];
    expect(chooseFollowed(list)).toEqual(["r", "q1", "q2"]);
  });
});

describe("routes and formats", () => {
  it("round-trips every screen through the URL fragment", () => {
    for (const hash of ["#/create/extend", "#/queue", "#/library", "#/library/123/1", "#/account"]) {
      expect(href(parseRoute(hash))).toBe(hash);
    }
    expect(parseRoute("")).toEqual({ screen: "create", kind: "text2video" });
    expect(parseRoute("#/create/bogus")).toEqual({ screen: "create", kind: "text2video" });
  });

  it("shows elapsed time as a clock and date filters as a start", () => {
    expect(clock(65_000)).toBe("1:05");
    expect(clock(3_725_000)).toBe("1:02:05");
    expect(since("all", 0)).toBeNull();
    expect(since("week", 8 * 86_400_000)).toBe(86_400_000);
  });
});
