// One task as a live card: preview frame, progress, stage, elapsed time, and what can be done with it.
import { useState } from "preact/hooks";
import { problemOf } from "../api/refusal";
import { isActive, type TaskView } from "../api/views";
import { isKey, t, type Message } from "../i18n";
import { Say } from "./Say";
import { clock, percent } from "../lib/format";
import { href } from "../router";
import { cancelTask, now, retryTask } from "../state/tasks";
import { Progress } from "./Progress";

export function stageText(task: TaskView): string {
  const key = `stage.${task.stage}`;
  return isKey(key) ? t(key) : task.stage;
}

function timing(task: TaskView, nowMs: number): string {
  if (task.status === "submitted") return t("queue.waiting", { time: clock(nowMs - task.created_at) });
  if (task.status === "processing") {
    return t("queue.elapsed", { time: clock(nowMs - (task.started_at ?? task.created_at)) });
  }
  const end = task.finished_at ?? task.updated_at;
  return t("queue.took", { time: clock(end - (task.started_at ?? task.created_at)) });
}

function Picture({ task }: { task: TaskView }) {
  const first = task.outputs[0];
  const src = isActive(task)
    ? task.preview_url
    : (first?.poster_url ?? (first?.type === "image" ? first.url : null));
  if (!src)
    return <div class={isActive(task) ? "card-picture shimmer" : "card-picture"} aria-hidden="true" />;
  return <img class="card-picture" src={src} alt={isActive(task) ? t("queue.preview") : ""} />;
}

export function TaskCard({ task, compact }: { task: TaskView; compact?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const act = async (action: (id: string) => Promise<void>) => {
    setBusy(true);
    setProblem(null);
    try {
      await action(task.id);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  const prompt = String(task.params.prompt ?? "") || t("queue.noPrompt");
  const running = isActive(task);
  const draws = task.outputs.length || Number(task.params.n ?? 1);
  return (
    <article class={`card task-card is-${task.status}${compact ? " compact" : ""}`} aria-label={prompt}>
      <Picture task={task} />
      <div class="card-body">
        <header class="card-head">
          <span class="chip">{t(`kind.${task.kind}`)}</span>
          <span class={`status status-${task.status}`}>{t(`status.${task.status}`)}</span>
          {draws > 1 && <span class="muted">{t("queue.draws", { count: draws })}</span>}
        </header>
        <p class="card-prompt">{prompt}</p>
        {running && (
          <Progress
            value={task.progress}
            label={t("queue.progress", { prompt })}
            waiting={task.status === "submitted"}
          />
        )}
        <p class="card-meta">
          <span class="stage">
            {stageText(task)}
            {task.status === "processing" && ` · ${percent(task.progress)}%`}
          </span>
          <span class="elapsed">{timing(task, now.value)}</span>
          {task.attempt > 1 && (
            <span>{t("queue.attempt", { attempt: task.attempt, max: task.max_attempts })}</span>
          )}
        </p>
        {task.error && task.status === "failed" && <p class="card-error">{task.error}</p>}
        {problem && (
          <p class="card-error" role="alert">
            <Say message={problem} />
          </p>
        )}
        <div class="card-actions">
          {running && (
            <button
              type="button"
              class="button ghost"
              disabled={busy || task.cancel_requested}
              onClick={() => act(cancelTask)}
            >
              {task.cancel_requested ? t("queue.cancelling") : t("queue.cancel")}
            </button>
          )}
          {(task.status === "failed" || task.status === "cancelled") && (
            <button type="button" class="button" disabled={busy} onClick={() => act(retryTask)}>
              {t("queue.retry")}
            </button>
          )}
          {task.status === "succeed" && (
            <a class="button" href={href({ screen: "library", taskId: task.id, index: 0 })}>
              {t("queue.open")}
            </a>
          )}
        </div>
      </div>
    </article>
  );
}
