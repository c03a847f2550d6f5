// The knobs beside the prompt: aspect ratio, length, quality, draws, seed and guidance, limited to
// what the kind uses and the chosen model allows.
import { ASPECTS, type Kind, type ModelView } from "../api/views";
import { FieldError } from "../components/FieldError";
import { t } from "../i18n";
import type { Field } from "../lib/fields";
import {
  DURATIONS,
  EXTEND_SECONDS,
  draft,
  maxDraws,
  patchDraft,
  randomSeed,
  type FieldErrors,
} from "../state/draft";

function described(field: Field, errors: FieldErrors, hint?: string): Record<string, unknown> {
  const ids = [hint, errors[field] ? `f-${field}-error` : undefined].filter(Boolean).join(" ");
  return { "aria-describedby": ids || undefined, "aria-invalid": errors[field] ? true : undefined };
}

function Segmented<T extends string>(props: {
  field: Field;
  legend: string;
  options: readonly { value: T; label: string }[];
  value: T;
  onChange: (value: T) => void;
  errors: FieldErrors;
  hint?: string;
}) {
  const { field, legend, options, value, onChange, errors, hint } = props;
  return (
    <fieldset class="segmented" id={`f-${field}`} {...described(field, errors)}>
      <legend>{legend}</legend>
      <div class="segments">
        {options.map((option) => (
          <label key={option.value} class={option.value === value ? "is-selected" : undefined}>
            <input
              type="radio"
              name={field}
              value={option.value}
              checked={option.value === value}
              onChange={() => onChange(option.value)}
            />
            <span>{option.label}</span>
          </label>
        ))}
      </div>
      {hint && <p class="hint">{hint}</p>}
      <FieldError id={`f-${field}-error`} message={errors[field]} />
    </fieldset>
  );
}

function Select(props: {
  field: Field;
  label: string;
  value: number;
  options: number[];
  format: (n: number) => string;
  onChange: (n: number) => void;
  errors: FieldErrors;
}) {
  const { field, label, value, options, format, onChange, errors } = props;
  const all = options.includes(value) ? options : [...options, value].sort((a, b) => a - b);
  return (
    <div class="field">
      <label class="label" for={`f-${field}`}>
        {label}
      </label>
      <select
        id={`f-${field}`}
        value={String(value)}
        onChange={(e) => onChange(Number(e.currentTarget.value))}
        {...described(field, errors)}
      >
        {all.map((n) => (
          <option key={n} value={String(n)}>
            {format(n)}
          </option>
        ))}
      </select>
      <FieldError id={`f-${field}-error`} message={errors[field]} />
    </div>
  );
}

function Seed({ errors }: { errors: FieldErrors }) {
  const d = draft.value;
  return (
    <div class="field">
      <label class="label" for="f-seed">
        {t("create.seed")}
      </label>
      <div class="seed-row">
        <input
          id="f-seed"
          type="text"
          inputMode="numeric"
          autoComplete="off"
          value={d.seed}
          placeholder={t("create.seedPlaceholder")}
          onInput={(e) => patchDraft({ seed: e.currentTarget.value })}
          {...described("seed", errors)}
        />
        <button
          type="button"
          class="button icon"
          title={t("create.seedDice")}
          aria-label={t("create.seedDice")}
          onClick={() => patchDraft({ seed: String(randomSeed()) })}
        >
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
            <rect x="3.5" y="3.5" width="17" height="17" rx="4" />
            <circle class="pip" cx="8.5" cy="8.5" r="1.5" />
            <circle class="pip" cx="15.5" cy="15.5" r="1.5" />
            <circle class="pip" cx="12" cy="12" r="1.5" />
          </svg>
        </button>
        {d.seed && (
          <button type="button" class="button ghost small" onClick={() => patchDraft({ seed: "" })}>
            {t("create.seedClear")}
          </button>
        )}
      </div>
      <FieldError id="f-seed-error" message={errors.seed} />
    </div>
  );
}

function Guidance({ model, errors }: { model: ModelView | null; errors: FieldErrors }) {
  const caps = model?.capabilities;
  if (!caps) return null;
  const [low, high] = caps.guidance_range;
  const value = draft.value.guidance ?? caps.guidance;
  return (
    <div class="field">
      <label class="label" for="f-guidance_scale">
        {t("create.guidance")} <span class="value">{value.toFixed(1)}</span>
      </label>
      <input
        id="f-guidance_scale"
        type="range"
        min={low}
        max={high}
        step={0.5}
        value={value}
        onInput={(e) => patchDraft({ guidance: Number(e.currentTarget.value) })}
        {...described("guidance_scale", errors, "f-guidance-hint")}
      />
      <p class="hint" id="f-guidance-hint">
        {t("create.guidanceHint", { low, high, value: caps.guidance })}
      </p>
      <FieldError id="f-guidance_scale-error" message={errors.guidance_scale} />
    </div>
  );
}

function Steps({ model, errors }: { model: ModelView | null; errors: FieldErrors }) {
  const d = draft.value;
  const fallback = model?.capabilities?.steps[d.mode];
  return (
    <details class="advanced" open={!!errors.num_inference_steps || !!d.steps}>
      <summary>{t("create.advanced")}</summary>
      <div class="field">
        <label class="label" for="f-num_inference_steps">
          {t("create.steps")}
        </label>
        <input
          id="f-num_inference_steps"
          type="text"
          inputMode="numeric"
          autoComplete="off"
          value={d.steps}
          placeholder={fallback ? t("create.stepsPlaceholder", { value: fallback }) : ""}
          onInput={(e) => patchDraft({ steps: e.currentTarget.value })}
          {...described("num_inference_steps", errors)}
        />
        <FieldError id="f-num_inference_steps-error" message={errors.num_inference_steps} />
      </div>
    </details>
  );
}

export function Settings({
  kind,
  model,
  errors,
}: {
  kind: Kind;
  model: ModelView | null;
  errors: FieldErrors;
}) {
  const d = draft.value;
  const seconds = (value: number) => t("create.secondsValue", { value });
  const steps = model?.capabilities?.steps;
  const draws = Array.from({ length: maxDraws(kind) }, (_, i) => i + 1);
  return (
    <div class="settings">
      {(kind === "text2video" || kind === "text2image") && (
        <Segmented
          field="aspect_ratio"
          legend={t("create.aspect")}
          value={d.aspect}
          onChange={(aspect) => patchDraft({ aspect })}
          errors={errors}
          options={ASPECTS.map((a) => ({ value: a, label: a }))}
        />
      )}
      {(kind === "text2video" || kind === "image2video") && (
        <Select
          field="duration"
          label={t("create.duration")}
          value={d.duration}
          options={DURATIONS}
          format={seconds}
          onChange={(duration) => patchDraft({ duration })}
          errors={errors}
        />
      )}
      {kind === "extend" && (
        <Select
          field="seconds"
          label={t("create.seconds")}
          value={d.seconds}
          options={EXTEND_SECONDS}
          format={seconds}
          onChange={(value) => patchDraft({ seconds: value })}
          errors={errors}
        />
      )}
      <Segmented
        field="mode"
        legend={t("create.mode")}
        value={d.mode}
        onChange={(mode) => patchDraft({ mode })}
        errors={errors}
        options={[
          { value: "std", label: t("create.mode.std") },
          { value: "pro", label: t("create.mode.pro") },
        ]}
        hint={steps ? t("create.modeHint", { steps: steps[d.mode] }) : undefined}
      />
      <Select
        field="n"
        label={t("create.n")}
        value={Math.min(d.n, draws.length)}
        options={draws}
        format={String}
        onChange={(n) => patchDraft({ n })}
        errors={errors}
      />
      <Seed errors={errors} />
      <Guidance model={model} errors={errors} />
      <Steps model={model} errors={errors} />
    </div>
  );
}
