import { describe, expect, it } from "vitest";
import { parseSse } from "../src/api/events";

describe("parseSse", () => {
  it("splits complete events and keeps the one still arriving", () => {
    const { events, rest } = parseSse(
      'event: task\nid: 1.5\ndata: {"a":1}\n\n: keep-alive\n\nevent: task\ndata: {"a"',
    );
    expect(events).toEqual([{ event: "task", id: "1.5", data: '{"a":1}' }]);
    expect(rest).toBe('event: task\ndata: {"a"');
    expect(parseSse(rest + ":2}\n\n").events).toEqual([{ event: "task", data: '{"a":2}' }]);
  });

  it("reads CRLF line ends, multi-line data and events without data", () => {
    const { events } = parseSse("data: one\r\ndata: two\r\n\r\nevent: deleted\n\n");
    expect(events).toEqual([
      { event: "message", data: "one\ntwo" },
      { event: "deleted", data: "" },
    ]);
  });

  it("treats comments alone as nothing", () => {
    expect(parseSse(": keep-alive\n\n").events).toEqual([]);
  });
});
