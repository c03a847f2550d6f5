// The models as radio cards, each with what it can do; models that cannot make this kind are disabled
// with the reason.
import { KINDS, type Kind, type ModelView } from "../api/views";
import { t } from "../i18n";
import { usable } from "../state/models";

function Abilities({ model }: { model: ModelView }) {
  const caps = model.capabilities;
  if (!caps) return <p class="model-error">{model.error ?? t("models.offline")}</p>;
  const [low, high] = caps.guidance_range;
  return (
    <ul class="model-caps">
      {KINDS.filter((kind) => caps.kinds.includes(kind)).map((kind) => (
        <li key={kind} class="chip">
          {t(`kind.${kind}`)}
        </li>
      ))}
      {caps.first_last_frame && <li class="chip">{t("models.firstLast")}</li>}
      <li>{t("models.fps", { fps: caps.fps })}</li>
      <li>{t("models.segment", { seconds: Math.round((caps.max_frames / caps.fps) * 10) / 10 })}</li>
      <li>{t("models.steps", { std: caps.steps.std, pro: caps.steps.pro })}</li>
      <li>{t("models.guidance", { low, high })}</li>
    </ul>
  );
}

export function ModelPicker(props: {
  models: ModelView[];
  kind: Kind;
  value: string;
  onChange: (id: string) => void;
  errorId?: string;
}) {
  const { models, kind, value, onChange, errorId } = props;
  return (
    <fieldset class="model-picker" id="f-model" aria-describedby={errorId}>
      <legend>{t("create.model")}</legend>
      {models.map((model) => {
        const can = usable(model, kind);
        const reason = !model.online
          ? t("models.offline")
          : !can
            ? t("models.cannot", { kind: t(`kind.${kind}`) })
            : t("models.workers", { count: model.workers });
        return (
          <label
            key={model.id}
            class={`model-card${value === model.id ? " is-selected" : ""}${can ? "" : " is-disabled"}`}
          >
            <input
              type="radio"
              name="model"
              value={model.id}
              checked={value === model.id}
              disabled={!can}
              onChange={() => onChange(model.id)}
            />
            <span class="model-head">
              <span class={`dot${model.online ? " on" : ""}`} aria-hidden="true" />
              <strong>{model.id}</strong>
              <span class="muted">{model.family}</span>
              <span class="muted model-state">{reason}</span>
            </span>
            {model.capabilities?.description && (
              <span class="model-desc">{model.capabilities.description}</span>
            )}
            <Abilities model={model} />
          </label>
        );
      })}
    </fieldset>
  );
}
