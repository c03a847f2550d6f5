// Account: sign in when signed out; when signed in, who you are and sign-out, the plan, balance and
// slots in use, the credit history, usage of the last 30 days, API keys, the password and the browsers
// signed in. Each section loads its own part of /api/v1/account.
import { useState } from "preact/hooks";
import { kinema } from "../api/client";
import { problemOf } from "../api/refusal";
import { credentials, restoring, type Credentials } from "../auth/session";
import { signOut } from "../auth/signin";
import { LanguageSelect } from "../components/LanguageSelect";
import { useRemote } from "../components/Remote";
import { Say } from "../components/Say";
import { t, type Message } from "../i18n";
import { Keys } from "./account/Keys";
import { Ledger } from "./account/Ledger";
import { Password } from "./account/Password";
import { Sessions } from "./account/Sessions";
import { Summary } from "./account/Summary";
import { Usage } from "./account/Usage";
import { SignIn } from "./SignIn";

function how(who: Credentials): string {
  if (who.kind === "session") return t("account.withPassword", { name: who.name });
  if (who.kind === "pair")
    return t("account.signedInAs", { what: t("account.pairWhat", { key: who.accessKey }) });
  return t("account.signedInAs", { what: t("account.keyWhat", { prefix: who.apiKey.slice(0, 8) }) });
}

function SignedIn({ who }: { who: Credentials }) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const leave = async () => {
    setBusy(true);
    setProblem(null);
    try {
      await signOut();
    } catch (error) {
      setProblem(problemOf(error));
      setBusy(false);
    }
  };
  return (
    <div class="card signed-in">
      <p>{how(who)}</p>
      <button type="button" class="button" disabled={busy} onClick={() => void leave()}>
        {t("account.signOut")}
      </button>
      {problem && (
        <p class="form-error" role="alert">
          <Say message={problem} />
        </p>
      )}
    </div>
  );
}

function Language() {
  return (
    <div class="card">
      <label class="label" for="account-language">
        {t("account.language")}
      </label>
      <LanguageSelect id="account-language" />
    </div>
  );
}

function Sections() {
  const account = useRemote(kinema.account);
  // Changing the password ends the account's other sessions: the list of browsers reloads after it.
  const [sessionsStamp, setSessionsStamp] = useState(0);
  return (
    <>
      <Summary remote={account} />
      <Ledger />
      <Usage />
      <Keys />
      {account.data && (
        <Password
          name={account.data.name}
          hasPassword={account.data.has_password}
          onChanged={() => {
            void account.reload();
            setSessionsStamp(sessionsStamp + 1);
          }}
        />
      )}
      <Sessions stamp={sessionsStamp} />
    </>
  );
}

export function Account() {
  const who = credentials.value;
  return (
    <section class="screen account" aria-labelledby="account-title">
      <h1 id="account-title" tabIndex={-1}>
        {t("account.title")}
      </h1>
      {who ? (
        <SignedIn who={who} />
      ) : restoring.value ? (
        <p class="muted" role="status">
          {t("account.restoring")}
        </p>
      ) : (
        <SignIn />
      )}
      {who && <Sections />}
      <Language />
    </section>
  );
}
