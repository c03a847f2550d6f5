// A drop zone for one frame: drag a file in or choose one (the input stays keyboard-focusable), see
// the preview, remove it. Problems are reported with the API's wording, next to the field.
import { useState } from "preact/hooks";
import { t, type Message } from "../i18n";
import { pickImage, type ImageField, type Picked } from "../lib/images";
import { FieldError } from "./FieldError";

export function ImageDrop(props: {
  field: ImageField;
  label: string;
  value: Picked | null;
  error?: Message;
  onChange: (picked: Picked | null, problem?: Message) => void;
}) {
  const { field, label, value, error, onChange } = props;
  const [over, setOver] = useState(false);
  const id = `f-${field}`;
  const errorId = `${id}-error`;
  const take = async (file: File | undefined) => {
    if (!file) return;
    try {
      onChange(await pickImage(file, file.name, field));
    } catch (problem) {
      onChange(null, problem as Message);
    }
  };
  return (
    <div class="field">
      <span class="label" id={`${id}-label`}>
        {label}
      </span>
      <div
        class={`drop${over ? " is-over" : ""}${value ? " has-image" : ""}${error ? " is-invalid" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          void take(e.dataTransfer?.files[0]);
        }}
      >
        {value ? (
          <figure class="drop-preview">
            <img src={value.url} alt={label} />
            <figcaption>
              <span class="drop-name">{value.name}</span>
              <span class="muted">{t("create.imageSize", { width: value.width, height: value.height })}</span>
              <button type="button" class="button ghost small" onClick={() => onChange(null)}>
                {t("create.imageRemove")}
              </button>
            </figcaption>
          </figure>
        ) : (
          <label class="drop-target" for={id}>
            <svg aria-hidden="true" viewBox="0 0 24 24" width="28" height="28">
              <path d="M12 16V4m0 0-4 4m4-4 4 4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" />
            </svg>
            <span>{over ? t("create.dropActive") : t("create.dropHint")}</span>
          </label>
        )}
        <input
          id={id}
          class="sr-only"
          type="file"
          accept="image/png,image/jpeg"
          aria-labelledby={`${id}-label`}
          aria-describedby={error ? errorId : undefined}
          aria-invalid={error ? true : undefined}
          onChange={(e) => {
            const input = e.currentTarget;
            void take(input.files?.[0]);
            input.value = "";
          }}
        />
      </div>
      <FieldError id={errorId} message={error} />
    </div>
  );
}
