// Library: finished results newest first, filtered by kind, model and date on the server;
// the draws of one request side by side. A result opens in the detail view above the grid.
import { useEffect, useState } from "preact/hooks";
import { kinema } from "../api/client";
import { problemOf } from "../api/refusal";
import { KINDS, type Kind, type TaskView } from "../api/views";
import { Say } from "../components/Say";
import { Thumb } from "../components/Thumb";
import { locale, t, type Message } from "../i18n";
import { dateTime, since } from "../lib/format";
import { href } from "../router";
import { models } from "../state/models";
import { libraryStamp, upsert } from "../state/tasks";
import { Detail } from "./Detail";

const PAGE = 30;
type DateFilter = "all" | "today" | "week" | "month";
const DATES: DateFilter[] = ["all", "today", "week", "month"];

function Filters(props: {
  kind: Kind | "all";
  setKind: (k: Kind | "all") => void;
  model: string;
  setModel: (m: string) => void;
  modelIds: string[];
  date: DateFilter;
  setDate: (d: DateFilter) => void;
}) {
  return (
    <form class="filters" aria-label={t("library.filters")} onSubmit={(e) => e.preventDefault()}>
      <label>
        <span class="label">{t("library.kind")}</span>
        <select
          id="filter-kind"
          value={props.kind}
          onChange={(e) => props.setKind(e.currentTarget.value as Kind | "all")}
        >
          <option value="all">{t("kind.all")}</option>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {t(`kind.${k}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span class="label">{t("library.model")}</span>
        <select id="filter-model" value={props.model} onChange={(e) => props.setModel(e.currentTarget.value)}>
          <option value="">{t("library.allModels")}</option>
          {props.modelIds.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <label>
        <span class="label">{t("library.date")}</span>
        <select
          id="filter-date"
          value={props.date}
          onChange={(e) => props.setDate(e.currentTarget.value as DateFilter)}
        >
          {DATES.map((d) => (
            <option key={d} value={d}>
              {t(`library.date.${d}`)}
            </option>
          ))}
        </select>
      </label>
    </form>
  );
}

function Item({ task }: { task: TaskView }) {
  const prompt = String(task.params.prompt ?? "");
  return (
    <article class={`result draws-${Math.min(task.outputs.length, 4)}`} aria-label={prompt}>
      <div class="result-draws">
        {task.outputs.map((output) => (
          <Thumb
            key={output.id}
            output={output}
            link={href({ screen: "library", taskId: task.id, index: output.index })}
            label={
              task.outputs.length > 1
                ? `${t("library.open", { prompt })} · ${t("library.draw", { index: output.index + 1 })}`
                : t("library.open", { prompt })
            }
          />
        ))}
      </div>
      <p class="result-caption">
        <span class="chip">{t(`kind.${task.kind}`)}</span>
        <span class="clamp">{prompt}</span>
      </p>
      <p class="result-meta muted">
        {task.model} · {dateTime(task.finished_at ?? task.created_at, locale.value)}
      </p>
    </article>
  );
}

export function Library({ taskId, index }: { taskId?: string; index?: number }) {
  const [kind, setKind] = useState<Kind | "all">("all");
  const [model, setModel] = useState("");
  const [date, setDate] = useState<DateFilter>("all");
  const [items, setItems] = useState<TaskView[]>([]);
  const [total, setTotal] = useState(0);
  const [loading, setLoading] = useState(true);
  const [problem, setProblem] = useState<Message | null>(null);

  const load = async (offset: number) => {
    setLoading(true);
    setProblem(null);
    try {
      const start = since(date, Date.now());
      const page = await kinema.list({
        status: ["succeed"],
        kind: kind === "all" ? undefined : [kind],
        model: model ? [model] : undefined,
        created_after: start ?? undefined,
        offset,
        limit: PAGE,
      });
      page.tasks.forEach(upsert);
      setItems((old) => (offset ? [...old, ...page.tasks] : page.tasks));
      setTotal(page.total);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(0), [kind, model, date, libraryStamp.value]);

  const filtered = kind !== "all" || !!model || date !== "all";
  const modelIds = [
    ...new Set([...(models.value ?? []).map((m) => m.id), ...items.map((task) => task.model), model]),
  ]
    .filter(Boolean)
    .sort();
  return (
    <section class="screen library" aria-labelledby="library-title">
      <div class="screen-head">
        <h1 id="library-title" tabIndex={-1}>
          {t("library.title")}
        </h1>
        <Filters
          kind={kind}
          setKind={setKind}
          model={model}
          setModel={setModel}
          modelIds={modelIds}
          date={date}
          setDate={setDate}
        />
      </div>
      {problem && (
        <p class="form-error" role="alert">
          <Say message={problem} />{" "}
          <button type="button" class="button ghost small" onClick={() => void load(0)}>
            {t("common.retryLoad")}
          </button>
        </p>
      )}
      {!loading && !problem && !items.length && (
        <p class="empty">{filtered ? t("library.noMatch") : t("library.empty")}</p>
      )}
      <div class="grid" aria-busy={loading}>
        {items.map((task) => (
          <Item key={task.id} task={task} />
        ))}
      </div>
      <div class="grid-foot">
        {loading && <p class="muted">{t("library.loading")}</p>}
        {!loading && items.length < total && (
          <button type="button" class="button ghost" onClick={() => void load(items.length)}>
            {t("library.more")}{" "}
            <span class="muted">{t("library.count", { shown: items.length, total })}</span>
          </button>
        )}
      </div>
      {taskId && <Detail taskId={taskId} index={index ?? 0} />}
    </section>
  );
}
