// Signing in: a name and password by default (a cookie session); an access key + secret key pair
// (tokens are signed here, in the browser) or a static API key for those who prefer keys.
import { useEffect, useRef, useState } from "preact/hooks";
import { signInProblem, signInWithKeys, signInWithPassword } from "../auth/signin";
import { FieldError } from "../components/FieldError";
import { Rich } from "../components/Rich";
import { Say } from "../components/Say";
import { t, type Key, type Message } from "../i18n";
import { go } from "../router";
import { loadModels } from "../state/models";

type Method = "password" | "pair" | "key";
type Input = "name" | "password" | "accessKey" | "secretKey" | "apiKey";
const REQUIRED: Record<Method, Input[]> = {
  password: ["name", "password"],
  pair: ["accessKey", "secretKey"],
  key: ["apiKey"],
};
const LABELS: Record<Input, Key> = {
  name: "signIn.name",
  password: "signIn.password",
  accessKey: "account.accessKey",
  secretKey: "account.secretKey",
  apiKey: "account.apiKey",
};

function TextInput(props: {
  input: Input;
  value: string;
  onInput: (value: string) => void;
  secret?: boolean;
  autoComplete: string;
  error?: Message;
}) {
  const { input, value, onInput, secret, autoComplete, error } = props;
  return (
    <div class="field">
      <label class="label" for={`f-${input}`}>
        {t(LABELS[input])}
      </label>
      <input
        id={`f-${input}`}
        type={secret ? "password" : "text"}
        autoComplete={autoComplete}
        autoCapitalize="none"
        spellcheck={false}
        value={value}
        onInput={(e) => onInput(e.currentTarget.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `f-${input}-error` : undefined}
      />
      <FieldError id={`f-${input}-error`} message={error} />
    </div>
  );
}

function KeyMethod(props: { method: "pair" | "key"; setMethod: (m: Method) => void }) {
  return (
    <fieldset class="segmented">
      <legend>{t("account.method")}</legend>
      <div class="segments">
        {(["pair", "key"] as const).map((m) => (
          <label key={m} class={m === props.method ? "is-selected" : undefined}>
            <input
              type="radio"
              name="method"
              value={m}
              checked={m === props.method}
              onChange={() => props.setMethod(m)}
            />
            <span>{t(`account.method.${m}`)}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

export function SignIn() {
  const [method, setMethod] = useState<Method>("password");
  const [values, setValues] = useState<Record<Input, string>>({
    name: "",
    password: "",
    accessKey: "",
    secretKey: "",
    apiKey: "",
  });
  const [remember, setRemember] = useState(true);
  const [busy, setBusy] = useState(false);
  const [missing, setMissing] = useState<Input | null>(null);
  const [problem, setProblem] = useState<Message | null>(null);
  const switched = useRef(false);
  useEffect(() => {
    // After switching between password and keys, put the cursor in the first field (not on first render).
    if (switched.current) document.getElementById(`f-${REQUIRED[method][0]}`)?.focus();
    switched.current = true;
  }, [method === "password"]);

  const choose = (next: Method) => {
    setMethod(next);
    setMissing(null);
    setProblem(null);
  };
  const field = (input: Input) => ({
    input,
    value: values[input],
    onInput: (value: string) => setValues({ ...values, [input]: value }),
    error:
      missing === input
        ? { key: "account.required" as const, params: { field: t(LABELS[input]) } }
        : undefined,
  });

  const submit = async (e: Event) => {
    e.preventDefault();
    const empty = REQUIRED[method].find((input) => !values[input].trim()) ?? null;
    setMissing(empty);
    setProblem(null);
    if (empty) {
      document.getElementById(`f-${empty}`)?.focus();
      return;
    }
    setBusy(true);
    try {
      if (method === "password") await signInWithPassword(values.name.trim(), values.password, remember);
      else if (method === "pair") {
        const pair = { accessKey: values.accessKey.trim(), secretKey: values.secretKey.trim() };
        await signInWithKeys({ kind: "pair", ...pair });
      } else await signInWithKeys({ kind: "key", apiKey: values.apiKey.trim() });
      void loadModels();
      go({ screen: "create", kind: "text2video" });
    } catch (error) {
      setProblem(signInProblem(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card sign-in" onSubmit={submit} noValidate aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">{t("account.signIn")}</h2>
      {method === "password" ? (
        <>
          <TextInput {...field("name")} autoComplete="username" />
          <TextInput {...field("password")} secret autoComplete="current-password" />
          <label class="check">
            <input
              type="checkbox"
              checked={remember}
              onChange={(e) => setRemember(e.currentTarget.checked)}
            />
            <span>{t("signIn.remember")}</span>
          </label>
          <p class="hint">
            <Rich text={t("signIn.passwordHint")} />
          </p>
        </>
      ) : (
        <>
          <KeyMethod method={method} setMethod={choose} />
          {method === "pair" ? (
            <>
              <TextInput {...field("accessKey")} autoComplete="username" />
              <TextInput {...field("secretKey")} secret autoComplete="current-password" />
              <p class="hint">
                <Rich text={t("account.pairHint")} />
              </p>
            </>
          ) : (
            <>
              <TextInput {...field("apiKey")} secret autoComplete="current-password" />
              <p class="hint">
                <Rich text={t("account.keyHint")} />
              </p>
            </>
          )}
          <p class="hint">{t("account.storage")}</p>
        </>
      )}
      {problem && (
        <p class="form-error" role="alert">
          <Say message={problem} />
        </p>
      )}
      <button type="submit" class="button primary" disabled={busy}>
        {busy ? t("account.signingIn") : t("account.signIn")}
      </button>
      <button
        type="button"
        class="link-button"
        onClick={() => choose(method === "password" ? "pair" : "password")}
      >
        {method === "password" ? t("signIn.useKeys") : t("signIn.usePassword")}
      </button>
    </form>
  );
}
