// Account: sign in with an access key + secret key pair (tokens are signed here, in the browser) or a
// static API key; sign out. Balance, usage and key management arrive with memberships.
import { useState } from "preact/hooks";
import { ApiError, kinema } from "../api/client";
import { credentials, setCredentials, type Credentials } from "../auth/session";
import { Rich } from "../components/Rich";
import { LOCALES, locale, say, setLocale, t, type Locale, type Message } from "../i18n";
import { go } from "../router";
import { loadModels } from "../state/models";

type Method = "pair" | "key";

async function verify(who: Credentials): Promise<void> {
  setCredentials(who);
  try {
    await kinema.models();
  } catch (error) {
    // 1003/1004: our clock is off; the answer's Date header has taught us the server's, so sign again.
    if (error instanceof ApiError && (error.code === 1003 || error.code === 1004)) await kinema.models();
    else throw error;
  }
}

function SignIn() {
  const [method, setMethod] = useState<Method>("pair");
  const [accessKey, setAccessKey] = useState("");
  const [secretKey, setSecretKey] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const missing =
      method === "pair"
        ? !accessKey.trim()
          ? "accessKey"
          : !secretKey.trim()
            ? "secretKey"
            : null
        : !apiKey.trim()
          ? "apiKey"
          : null;
    if (missing) {
      setProblem({ key: "account.required", params: { field: t(`account.${missing}`) } });
      document.getElementById(`f-${missing}`)?.focus();
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      await verify(
        method === "pair"
          ? { kind: "pair", accessKey: accessKey.trim(), secretKey: secretKey.trim() }
          : { kind: "key", apiKey: apiKey.trim() },
      );
      void loadModels();
      go({ screen: "create", kind: "text2video" });
    } catch (error) {
      setCredentials(null);
      setProblem(
        error instanceof ApiError && error.status ? { text: error.message } : { key: "error.network" },
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card sign-in" onSubmit={submit} noValidate aria-labelledby="sign-in-title">
      <h2 id="sign-in-title">{t("account.signIn")}</h2>
      <fieldset class="segmented">
        <legend>{t("account.method")}</legend>
        <div class="segments">
          {(["pair", "key"] as const).map((m) => (
            <label key={m} class={m === method ? "is-selected" : undefined}>
              <input
                type="radio"
                name="method"
                value={m}
                checked={m === method}
                onChange={() => setMethod(m)}
              />
              <span>{t(`account.method.${m}`)}</span>
            </label>
          ))}
        </div>
      </fieldset>
      {method === "pair" ? (
        <>
          <div class="field">
            <label class="label" for="f-accessKey">
              {t("account.accessKey")}
            </label>
            <input
              id="f-accessKey"
              type="text"
              autoComplete="username"
              spellcheck={false}
              value={accessKey}
              onInput={(e) => setAccessKey(e.currentTarget.value)}
            />
          </div>
          <div class="field">
            <label class="label" for="f-secretKey">
              {t("account.secretKey")}
            </label>
            <input
              id="f-secretKey"
              type="password"
              autoComplete="current-password"
              spellcheck={false}
              value={secretKey}
              onInput={(e) => setSecretKey(e.currentTarget.value)}
            />
          </div>
          <p class="hint">
            <Rich text={t("account.pairHint")} />
          </p>
        </>
      ) : (
        <div class="field">
          <label class="label" for="f-apiKey">
            {t("account.apiKey")}
          </label>
          <input
            id="f-apiKey"
            type="password"
            autoComplete="current-password"
            spellcheck={false}
            value={apiKey}
            onInput={(e) => setApiKey(e.currentTarget.value)}
          />
          <p class="hint">
            <Rich text={t("account.keyHint")} />
          </p>
        </div>
      )}
      <p class="hint">{t("account.storage")}</p>
      {problem && (
        <p class="form-error" role="alert">
          <Rich text={say(problem)} />
        </p>
      )}
      <button type="submit" class="button primary" disabled={busy}>
        {busy ? t("account.signingIn") : t("account.signIn")}
      </button>
    </form>
  );
}

function SignedIn({ who }: { who: Credentials }) {
  const what =
    who.kind === "pair"
      ? t("account.pairWhat", { key: who.accessKey })
      : t("account.keyWhat", { prefix: who.apiKey.slice(0, 8) });
  return (
    <div class="card signed-in">
      <p>{t("account.signedInAs", { what })}</p>
      <button type="button" class="button" onClick={() => setCredentials(null)}>
        {t("account.signOut")}
      </button>
    </div>
  );
}

export function Account() {
  const who = credentials.value;
  return (
    <section class="screen account" aria-labelledby="account-title">
      <h1 id="account-title" tabIndex={-1}>
        {t("account.title")}
      </h1>
      {who ? <SignedIn who={who} /> : <SignIn />}
      <div class="card">
        <label class="label" for="account-language">
          {t("account.language")}
        </label>
        <select
          id="account-language"
          value={locale.value}
          onChange={(e) => setLocale(e.currentTarget.value as Locale)}
        >
          {LOCALES.map((l) => (
            <option key={l.id} value={l.id}>
              {l.label}
            </option>
          ))}
        </select>
      </div>
      {who && (
        <section class="card placeholder" aria-labelledby="membership-title">
          <h2 id="membership-title">{t("account.membership")}</h2>
          <p>
            <Rich text={t("account.membershipText")} />
          </p>
        </section>
      )}
    </section>
  );
}
