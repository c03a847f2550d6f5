// Create: a tab per kind, the prompt and the kind's inputs, the settings the chosen model allows, and
// the tasks just made from here, live. Refusals from the API land next to the field they name.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { problemOf } from "../api/refusal";
import { KINDS, type Kind, type ModelView } from "../api/views";
import { FieldError } from "../components/FieldError";
import { ImageDrop } from "../components/ImageDrop";
import { ModelPicker } from "../components/ModelPicker";
import { Rich } from "../components/Rich";
import { Say } from "../components/Say";
import { TaskCard } from "../components/TaskCard";
import { VideoPicker } from "../components/VideoPicker";
import { t, type Message } from "../i18n";
import { fieldOf, type Field } from "../lib/fields";
import { go, href } from "../router";
import { draft, maxDraws, patchDraft, toRequest, type FieldErrors } from "../state/draft";
import { loadModels, models, modelsError, pickModel } from "../state/models";
import { createTask, createdHere, tasks } from "../state/tasks";
import { toast } from "../state/toasts";
import { Settings } from "./Settings";

const USED: Record<Kind, readonly Field[]> = {
  text2video: [
    "prompt",
    "negative_prompt",
    "model",
    "aspect_ratio",
    "duration",
    "mode",
    "n",
    "seed",
    "guidance_scale",
    "num_inference_steps",
  ],
  image2video: [
    "prompt",
    "negative_prompt",
    "model",
    "image",
    "image_tail",
    "duration",
    "mode",
    "n",
    "seed",
    "guidance_scale",
    "num_inference_steps",
  ],
  extend: [
    "prompt",
    "negative_prompt",
    "model",
    "video_id",
    "seconds",
    "mode",
    "n",
    "seed",
    "guidance_scale",
    "num_inference_steps",
  ],
  text2image: [
    "prompt",
    "negative_prompt",
    "model",
    "aspect_ratio",
    "mode",
    "n",
    "seed",
    "guidance_scale",
    "num_inference_steps",
  ],
};

function Tabs({ kind }: { kind: Kind }) {
  const onKey = (e: KeyboardEvent) => {
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    const next = KINDS[(KINDS.indexOf(kind) + step + KINDS.length) % KINDS.length];
    go({ screen: "create", kind: next });
    requestAnimationFrame(() => document.getElementById(`tab-${next}`)?.focus());
  };
  return (
    <div class="tabs" role="tablist" aria-label={t("create.tabs")} onKeyDown={onKey}>
      {KINDS.map((k) => (
        <a
          key={k}
          id={`tab-${k}`}
          role="tab"
          class="tab"
          href={href({ screen: "create", kind: k })}
          aria-selected={k === kind}
          aria-controls="create-panel"
          tabIndex={k === kind ? 0 : -1}
        >
          {t(`kind.${k}`)}
        </a>
      ))}
    </div>
  );
}

function Prompts({ kind, errors }: { kind: Kind; errors: FieldErrors }) {
  const d = draft.value;
  const optional = kind === "image2video" || kind === "extend";
  return (
    <>
      <div class="field">
        <label class="label" for="f-prompt">
          {t("create.prompt")}
        </label>
        <textarea
          id="f-prompt"
          rows={4}
          maxLength={2500}
          value={d.prompt}
          placeholder={t("create.promptPlaceholder")}
          aria-describedby={`f-prompt-hint${errors.prompt ? " f-prompt-error" : ""}`}
          aria-invalid={errors.prompt ? true : undefined}
          onInput={(e) => patchDraft({ prompt: e.currentTarget.value })}
        />
        <p class="hint split" id="f-prompt-hint">
          <span>{optional ? t("create.promptHintOptional") : t("create.promptHintVideo")}</span>
          <span aria-hidden="true">{t("create.chars", { count: d.prompt.length, max: 2500 })}</span>
        </p>
        <FieldError id="f-prompt-error" message={errors.prompt} />
      </div>
      <div class="field">
        <label class="label" for="f-negative_prompt">
          {t("create.negative")}
        </label>
        <input
          id="f-negative_prompt"
          type="text"
          maxLength={2500}
          value={d.negative}
          placeholder={t("create.negativePlaceholder")}
          aria-describedby={errors.negative_prompt ? "f-negative_prompt-error" : undefined}
          aria-invalid={errors.negative_prompt ? true : undefined}
          onInput={(e) => patchDraft({ negative: e.currentTarget.value })}
        />
        <FieldError id="f-negative_prompt-error" message={errors.negative_prompt} />
      </div>
    </>
  );
}

function KindInputs({
  kind,
  errors,
  setError,
}: {
  kind: Kind;
  errors: FieldErrors;
  setError: (f: Field, m?: Message) => void;
}) {
  const d = draft.value;
  if (kind === "image2video") {
    return (
      <div class="frames">
        <ImageDrop
          field="image"
          label={t("create.firstFrame")}
          value={d.image}
          error={errors.image}
          onChange={(image, problem) => {
            patchDraft({ image });
            setError("image", problem);
          }}
        />
        <ImageDrop
          field="image_tail"
          label={t("create.lastFrame")}
          value={d.imageTail}
          error={errors.image_tail}
          onChange={(imageTail, problem) => {
            patchDraft({ imageTail });
            setError("image_tail", problem);
          }}
        />
      </div>
    );
  }
  if (kind === "extend") {
    const pick = (videoId: string) => {
      const parent = tasks.value.get(videoId.slice(0, videoId.lastIndexOf("-")));
      patchDraft(parent ? { videoId, model: parent.model } : { videoId });
      setError("video_id");
    };
    return (
      <div class="field">
        <VideoPicker
          value={d.videoId}
          onChange={pick}
          errorId={errors.video_id ? "f-video_id-error" : undefined}
        />
        <FieldError id="f-video_id-error" message={errors.video_id} />
      </div>
    );
  }
  return null;
}

function Recent() {
  const mine = createdHere.value.map((id) => tasks.value.get(id)).filter((task) => task !== undefined);
  if (!mine.length) return null;
  return (
    <section class="recent" aria-labelledby="recent-title">
      <h2 id="recent-title">{t("create.recent")}</h2>
      <div class="cards">
        {mine.slice(0, 4).map((task) => (
          <TaskCard key={task.id} task={task} compact />
        ))}
      </div>
    </section>
  );
}

function chosenModel(list: ModelView[] | null, id: string): ModelView | null {
  return list?.find((m) => m.id === id) ?? null;
}

export function Create({ kind }: { kind: Kind }) {
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<Message | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const d = draft.value;
  useEffect(() => {
    if (models.value === null) void loadModels();
  }, []);
  useEffect(() => {
    const model = models.value ? pickModel(models.value, kind, draft.value.model) : draft.value.model;
    patchDraft({ kind, model, n: Math.min(draft.value.n, maxDraws(kind)) });
    setErrors({});
    setFormError(null);
  }, [kind, models.value]);
  const setError = (field: Field, message?: Message) => setErrors((old) => ({ ...old, [field]: message }));
  const model = chosenModel(models.value, d.model);

  const submit = async (e: Event) => {
    e.preventDefault();
    setFormError(null);
    const built = toRequest(draft.value, model);
    if ("errors" in built) {
      setErrors(built.errors);
      focusFirst(kind, built.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      await createTask(built.body);
      toast(t("create.queued", { kind: t(`kind.${kind}`) }), {
        tone: "success",
        link: { href: "#/queue", label: t("nav.queue") },
      });
    } catch (error) {
      refused(kind, error, setErrors, setFormError);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="screen create" aria-labelledby="create-title">
      <h1 id="create-title" ref={heading} tabIndex={-1} class="sr-only">
        {t("create.title")}
      </h1>
      <Tabs kind={kind} />
      <form
        id="create-panel"
        role="tabpanel"
        aria-labelledby={`tab-${kind}`}
        class="create-form"
        noValidate
        onSubmit={submit}
      >
        <div class="create-main">
          <KindInputs kind={kind} errors={errors} setError={setError} />
          <Prompts kind={kind} errors={errors} />
          <Recent />
        </div>
        <aside class="create-settings" aria-label={t("create.settings")}>
          {models.value === null && !modelsError.value && <p class="muted">{t("models.loading")}</p>}
          {modelsError.value && (
            <p class="field-error">
              <Say message={problemOf(modelsError.value)} />
            </p>
          )}
          {models.value && !models.value.length && (
            <p class="field-error">
              <Rich text={t("models.none")} />
            </p>
          )}
          {models.value && models.value.length > 0 && (
            <ModelPicker
              models={models.value}
              kind={kind}
              value={d.model}
              onChange={(id) => patchDraft({ model: id, guidance: null })}
              errorId={errors.model ? "f-model-error" : undefined}
            />
          )}
          <FieldError id="f-model-error" message={errors.model} />
          <Settings kind={kind} model={model} errors={errors} />
          <div class="submit-row">
            <button type="submit" class="button primary large" disabled={busy}>
              {busy ? t("create.submitting") : t("create.submit")}
            </button>
          </div>
          {formError && (
            <p class="form-error" role="alert">
              <Say message={formError} />
            </p>
          )}
        </aside>
      </form>
    </section>
  );
}

function focusFirst(kind: Kind, errors: FieldErrors): void {
  const first = USED[kind].find((field) => errors[field]);
  if (first) requestAnimationFrame(() => document.getElementById(`f-${first}`)?.focus());
}

/** Put an API refusal next to the field it names, or above the button when it names none shown here. */
function refused(
  kind: Kind,
  error: unknown,
  setErrors: (errors: FieldErrors) => void,
  setFormError: (message: Message) => void,
): void {
  const field = error instanceof ApiError && error.status ? fieldOf(error.message) : null;
  if (field && USED[kind].includes(field)) {
    const errors = { [field]: problemOf(error) };
    setErrors(errors);
    focusFirst(kind, errors);
  } else {
    setFormError(problemOf(error));
  }
}
