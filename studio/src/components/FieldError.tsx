import type { Message } from "../i18n";
import { Say } from "./Say";

/** The message under a field; the field points at it with aria-describedby. */
export function FieldError({ id, message }: { id: string; message?: Message }) {
  if (!message) return null;
  return (
    <p id={id} class="field-error" role="alert">
      <Say message={message} atField />
    </p>
  );
}
