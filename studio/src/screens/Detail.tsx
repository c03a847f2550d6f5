// One result, above the library: the player, its draws, every parameter and the seed, and what to do
// next (reuse the settings, extend by 5 s, download, delete).
import { useEffect, useRef, useState } from "preact/hooks";
import { problemOf } from "../api/refusal";
import type { Output, TaskView } from "../api/views";
import { Say } from "../components/Say";
import { isKey, locale, t, type Message } from "../i18n";
import { dateTime, fileName } from "../lib/format";
import { pickImage } from "../lib/images";
import { go, href } from "../router";
import { draft, fromTask, patchDraft } from "../state/draft";
import { models } from "../state/models";
import { createTask, deleteTask, refreshTask, tasks } from "../state/tasks";
import { toast } from "../state/toasts";

const ORDER = [
  "kind",
  "model",
  "prompt",
  "negative_prompt",
  "mode",
  "aspect_ratio",
  "duration",
  "seconds",
  "n",
  "seed",
  "num_inference_steps",
  "guidance_scale",
];
const HIDDEN = new Set(["image_url", "image_tail_url", "video_url"]);

function parameters(task: TaskView, output: Output): [string, string][] {
  const caps = models.value?.find((m) => m.id === task.model)?.capabilities;
  const params: Record<string, unknown> = {
    ...task.params,
    kind: task.kind,
    model: task.model,
    seed: output.seed,
  };
  const keys = [
    ...ORDER,
    ...Object.keys(params)
      .filter((k) => !ORDER.includes(k) && !HIDDEN.has(k))
      .sort(),
  ];
  const rows: [string, string][] = [];
  for (const key of keys) {
    let value = params[key];
    if (value === undefined || value === null || value === "") {
      if (key !== "num_inference_steps" && key !== "guidance_scale") continue;
      const fallback =
        key === "guidance_scale" ? caps?.guidance : caps?.steps[task.params.mode === "pro" ? "pro" : "std"];
      value = fallback === undefined ? t("param.default") : `${fallback} (${t("param.default")})`;
    }
    if (key === "kind") value = t(`kind.${task.kind}`);
    if (key === "mode") value = t(value === "pro" ? "create.mode.pro" : "create.mode.std");
    if (key === "duration" || key === "seconds") value = t("common.seconds", { value: String(value) });
    const label = `param.${key}`;
    rows.push([
      isKey(label) ? t(label) : key,
      typeof value === "object" ? JSON.stringify(value) : String(value),
    ]);
  }
  rows.push([t("param.size"), `${output.width} × ${output.height}`]);
  if (output.num_frames) rows.push([t("param.frames"), `${output.num_frames} @ ${output.fps} fps`]);
  rows.push([t("param.created"), dateTime(task.created_at, locale.value)]);
  rows.push([t("param.finished"), dateTime(task.finished_at, locale.value)]);
  rows.push([t("param.task"), task.id]);
  return rows;
}

async function reuse(task: TaskView, output: Output): Promise<void> {
  patchDraft(fromTask(task, output));
  for (const [field, key] of [
    ["image", "image_url"],
    ["image_tail", "image_tail_url"],
  ] as const) {
    const url = task.params[key];
    if (typeof url !== "string") continue;
    try {
      const blob = await (await fetch(url)).blob();
      const picked = await pickImage(blob, `${field}.png`, field);
      patchDraft(field === "image" ? { image: picked } : { imageTail: picked });
    } catch {
      // the input expired with its link: the user picks the image again
    }
  }
  toast(t("create.reused"));
  go({ screen: "create", kind: task.kind });
}

function Player({ output, label }: { output: Output; label: string }) {
  if (output.type === "image") return <img class="player" src={output.url ?? ""} alt={label} />;
  return (
    <video
      class="player"
      key={output.id}
      src={output.url ?? undefined}
      poster={output.poster_url ?? undefined}
      controls
      autoplay
      muted
      loop
      playsInline
      aria-label={label}
    />
  );
}

function Actions({ task, output }: { task: TaskView; output: Output }) {
  const [busy, setBusy] = useState<"extend" | "delete" | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const run = async (what: "extend" | "delete", action: () => Promise<void>) => {
    setBusy(what);
    setProblem(null);
    try {
      await action();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(null);
    }
  };
  const extend = () =>
    run("extend", async () => {
      await createTask({ kind: "extend", video_id: output.id, seconds: 5 });
      toast(t("detail.extended"), { tone: "success", link: { href: "#/queue", label: t("nav.queue") } });
    });
  const remove = () =>
    run("delete", async () => {
      await deleteTask(task.id);
      if (draft.value.videoId?.startsWith(`${task.id}-`)) patchDraft({ videoId: null });
      go({ screen: "library" });
    });
  return (
    <div class="detail-actions">
      <button type="button" class="button" onClick={() => void reuse(task, output)}>
        {t("detail.reuse")}
      </button>
      {output.type === "video" && (
        <button type="button" class="button" disabled={busy !== null} onClick={() => void extend()}>
          {busy === "extend" ? t("detail.extending") : t("detail.extend")}
        </button>
      )}
      {output.url && (
        <a class="button" href={output.url} download={fileName(output.id, output.type)}>
          {t("detail.download")}
        </a>
      )}
      {!confirming ? (
        <button type="button" class="button danger ghost" onClick={() => setConfirming(true)}>
          {t("detail.delete")}
        </button>
      ) : (
        <div class="confirm" role="group" aria-label={t("detail.confirmDelete")}>
          <p>{t("detail.confirmDelete")}</p>
          <button type="button" class="button danger" disabled={busy !== null} onClick={() => void remove()}>
            {t("detail.confirmYes")}
          </button>
          <button type="button" class="button ghost" onClick={() => setConfirming(false)}>
            {t("detail.confirmNo")}
          </button>
        </div>
      )}
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />
        </p>
      )}
    </div>
  );
}

function Inputs({ task }: { task: TaskView }) {
  const images = (["image_url", "image_tail_url"] as const)
    .map((k) => task.params[k])
    .filter((u): u is string => typeof u === "string");
  const parent = task.parent_video?.id;
  if (!images.length && !parent) return null;
  const cut = parent ? parent.lastIndexOf("-") : -1;
  return (
    <div class="detail-inputs">
      <h3>{t("detail.inputs")}</h3>
      {images.map((url) => (
        <img key={url} src={url} alt="" />
      ))}
      {parent && (
        <a
          href={href({
            screen: "library",
            taskId: parent.slice(0, cut),
            index: Number(parent.slice(cut + 1)),
          })}
        >
          {t("detail.parent", { id: parent })}
        </a>
      )}
    </div>
  );
}

/** Keep Tab inside the dialog while it is open: from the last control back to the first, and back. */
function trapFocus(e: KeyboardEvent): void {
  if (e.key !== "Tab") return;
  const dialog = e.currentTarget as HTMLElement;
  const controls = [
    ...dialog.querySelectorAll<HTMLElement>("a[href], button:not([disabled]), video[controls]"),
  ];
  const first = controls[0];
  const last = controls[controls.length - 1];
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last?.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first?.focus();
  }
}

export function Detail({ taskId, index }: { taskId: string; index: number }) {
  const close = useRef<HTMLAnchorElement>(null);
  const [missing, setMissing] = useState(false);
  const task = tasks.value.get(taskId);
  useEffect(() => {
    if (!task)
      void refreshTask(taskId).then(
        (found) => setMissing(!found),
        () => setMissing(true),
      );
  }, [taskId]);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    close.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && go({ screen: "library" });
    addEventListener("keydown", onKey);
    return () => {
      removeEventListener("keydown", onKey);
      before?.focus?.();
    };
  }, [taskId]);
  const output = task?.outputs[index] ?? task?.outputs[0];
  const prompt = String(task?.params.prompt ?? "");
  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && go({ screen: "library" })}>
      <div
        class="detail"
        role="dialog"
        aria-modal="true"
        aria-labelledby="detail-title"
        onKeyDown={trapFocus}
      >
        <header class="detail-head">
          <h2 id="detail-title" class="clamp">
            {prompt || t("library.title")}
          </h2>
          <a
            ref={close}
            class="button ghost icon"
            href="#/library"
            aria-label={t("detail.back")}
            title={t("detail.back")}
          >
            ✕
          </a>
        </header>
        {!task && <p class="muted">{missing ? t("detail.notFound") : t("common.loading")}</p>}
        {task && output && (
          <div class="detail-body">
            <div class="detail-media">
              <Player output={output} label={prompt} />
              {task.outputs.length > 1 && (
                <nav class="detail-draws" aria-label={t("detail.draws")}>
                  {task.outputs.map((o) => (
                    <a
                      key={o.id}
                      href={href({ screen: "library", taskId, index: o.index })}
                      aria-current={o.index === output.index ? "true" : undefined}
                    >
                      {o.poster_url || o.type === "image" ? (
                        <img src={(o.poster_url ?? o.url) as string} alt="" />
                      ) : null}
                      <span>{t("library.draw", { index: o.index + 1 })}</span>
                    </a>
                  ))}
                </nav>
              )}
              <Actions task={task} output={output} />
            </div>
            <div class="detail-info">
              <h3>{t("detail.params")}</h3>
              <dl class="params">
                {parameters(task, output).map(([name, value]) => (
                  <div key={name}>
                    <dt>{name}</dt>
                    <dd>{value}</dd>
                  </div>
                ))}
              </dl>
              <Inputs task={task} />
            </div>
          </div>
        )}
      </div>
    </div>
  );
}
