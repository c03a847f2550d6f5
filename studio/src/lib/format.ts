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
