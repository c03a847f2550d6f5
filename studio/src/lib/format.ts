// Numbers and times as people read them.

/** 65_000 ms -> "1:05"; an hour or more -> "1:02:05". */
export function clock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

export function percent(progress: number): number {
  return Math.round(Math.min(1, Math.max(0, progress)) * 100);
}

export function dateTime(ms: number | null, locale: string): string {
  if (ms === null) return "—";
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(ms);
}

export function shortId(id: string): string {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id;
}

/** Start of the window a date filter keeps, in ms; null keeps everything. */
export function since(filter: "all" | "today" | "week" | "month", nowMs: number): number | null {
  if (filter === "all") return null;
  if (filter === "today") {
    const midnight = new Date(nowMs);
    midnight.setHours(0, 0, 0, 0);
    return midnight.getTime();
  }
  return nowMs - (filter === "week" ? 7 : 30) * 86_400_000;
}

/** A file name for a download: `kinema-<task>-<index>.<ext>`. */
export function fileName(outputId: string, type: "video" | "image"): string {
  return `kinema-${outputId}.${type === "video" ? "mp4" : "png"}`;
}

/** Credits as people read them: `1,234`; signed for ledger entries: `+66`, `−14`. */
export function credits(amount: number, locale: string, signed = false): string {
  const text = new Intl.NumberFormat(locale, {
    maximumFractionDigits: 2,
    signDisplay: signed ? "exceptZero" : "auto",
  }).format(amount);
  return text.replace("-", "−"); // a real minus sign, as wide as the plus
}

/** The days before `nowMs`, as a [start, end) window in ms (what the usage report asks for). */
export function lastDays(days: number, nowMs: number): { start: number; end: number } {
  return { start: nowMs - days * 86_400_000, end: nowMs };
}

/** A browser's User-Agent as "Firefox on Windows"; the raw text when it is not one we know. */
export function browserName(agent: string): string {
  const browser = [
    ["Edg/", "Edge"],
    ["OPR/", "Opera"],
    ["Firefox/", "Firefox"],
    ["HeadlessChrome/", "Chromium"],
    ["Chromium/", "Chromium"],
    ["Chrome/", "Chrome"],
    ["Safari/", "Safari"],
  ].find(([mark]) => agent.includes(mark))?.[1];
  const system = [
    ["Android", "Android"],
    ["iPhone", "iOS"],
    ["iPad", "iPadOS"],
    ["Windows", "Windows"],
    ["Mac OS X", "macOS"],
    ["CrOS", "ChromeOS"],
    ["Linux", "Linux"],
  ].find(([mark]) => agent.includes(mark))?.[1];
  if (!browser) return agent.trim() || "?";
  return system ? `${browser} · ${system}` : browser;
}
