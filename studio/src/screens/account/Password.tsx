// Setting or changing the studio password (PUT /api/v1/account/password). The rules are checked here
// first; the server's refusal lands next to the field it names. Every other session of the account
// ends with the change.
import { useState } from "preact/hooks";
import { ApiError, kinema } from "../../api/client";
import { problemOf } from "../../api/refusal";
import { FieldError } from "../../components/FieldError";
import { Say } from "../../components/Say";
import { t, type Key, type Message } from "../../i18n";
import {
  checkPasswordForm,
  passwordFieldOf,
  type PasswordErrors,
  type PasswordField,
  type PasswordForm,
} from "../../lib/password";

const EMPTY: PasswordForm = { current: "", next: "", repeat: "" };
const FIELDS: { field: PasswordField; label: Key; autoComplete: string; hint?: Key }[] = [
  { field: "current", label: "password.current", autoComplete: "current-password" },
  { field: "next", label: "password.next", autoComplete: "new-password", hint: "password.rules" },
  { field: "repeat", label: "password.repeat", autoComplete: "new-password" },
];

export function Password(props: { name: string; hasPassword: boolean; onChanged: () => void }) {
  const { name, hasPassword, onChanged } = props;
  const [form, setForm] = useState<PasswordForm>(EMPTY);
  const [errors, setErrors] = useState<PasswordErrors>({});
  const [problem, setProblem] = useState<Message | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const refuse = (found: PasswordErrors) => {
    setErrors(found);
    const first = FIELDS.find(({ field }) => found[field]);
    if (first) document.getElementById(`pw-${first.field}`)?.focus();
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setDone(false);
    setProblem(null);
    const found = checkPasswordForm(form, { name, needsCurrent: hasPassword });
    if (Object.keys(found).length) return refuse(found);
    setErrors({});
    setBusy(true);
    try {
      await kinema.changePassword({
        current_password: hasPassword ? form.current : null,
        new_password: form.next,
      });
      setForm(EMPTY);
      setDone(true);
      onChanged();
    } catch (error) {
      const field = error instanceof ApiError && error.status === 400 ? passwordFieldOf(error.message) : null;
      if (field) refuse({ [field]: problemOf(error) });
      else setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="password-title">
      <h2 id="password-title">{hasPassword ? t("password.titleChange") : t("password.titleSet")}</h2>
      <form class="stack" onSubmit={submit} noValidate>
        {/* A hidden name lets password managers file the new password under the right account. */}
        <input type="text" autoComplete="username" value={name} readOnly hidden />
        {FIELDS.filter(({ field }) => hasPassword || field !== "current").map(
          ({ field, label, autoComplete, hint }) => {
            const described = [hint && `pw-${field}-hint`, errors[field] && `pw-${field}-error`];
            return (
              <div class="field" key={field}>
                <label class="label" for={`pw-${field}`}>
                  {t(label)}
                </label>
                <input
                  id={`pw-${field}`}
                  type="password"
                  autoComplete={autoComplete}
                  value={form[field]}
                  onInput={(e) => setForm({ ...form, [field]: e.currentTarget.value })}
                  aria-invalid={errors[field] ? true : undefined}
                  aria-describedby={described.filter(Boolean).join(" ") || undefined}
                />
                {hint && (
                  <p class="hint" id={`pw-${field}-hint`}>
                    {t(hint)}
                  </p>
                )}
                <FieldError id={`pw-${field}-error`} message={errors[field]} />
              </div>
            );
          },
        )}
        {problem && (
          <p class="form-error" role="alert">
            <Say message={problem} />
          </p>
        )}
        {done && (
          <p class="form-ok" role="status">
            {t("password.changed")}
          </p>
        )}
        <div>
          <button type="submit" class="button primary" disabled={busy}>
            {hasPassword ? t("password.submitChange") : t("password.submitSet")}
          </button>
        </div>
      </form>
    </section>
  );
}
