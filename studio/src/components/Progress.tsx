import { percent } from "../lib/format";

/** A progress bar that screen readers can read; `waiting` shows motion without a number. */
export function Progress({ value, label, waiting }: { value: number; label: string; waiting?: boolean }) {
  const pct = percent(value);
  return (
    <div
      class={waiting ? "progress is-waiting" : "progress"}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={waiting ? undefined : pct}
    >
      <div class="progress-fill" style={{ width: waiting ? "100%" : `${pct}%` }} />
    </div>
  );
}
