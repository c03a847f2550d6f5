// API keys (GET/POST/DELETE /api/v1/account/keys): the list, a new key pair or static key whose secret
// is shown once with copy buttons, and revoking a key after a confirmation.
import { useEffect, useRef, useState } from "preact/hooks";
import { kinema } from "../../api/client";
import { problemOf } from "../../api/refusal";
import type { KeyKind, KeyView, NewKey } from "../../api/views";
import { credentials } from "../../auth/session";
import { RemoteState, useRemote } from "../../components/Remote";
import { Say } from "../../components/Say";
import { locale, t, type Message } from "../../i18n";
import { dateTime } from "../../lib/format";
import { toast } from "../../state/toasts";

/** The key as people tell keys apart: a pair's access key, a static key's first characters. */
export function keyLabel(key: KeyView): string {
  return key.kind === "pair" && key.access_key ? key.access_key : `${key.prefix}…`;
}

/** Whether this tab signed in with the key (revoking it signs this tab out). */
function inUseHere(key: KeyView): boolean {
  const who = credentials.value;
  if (who?.kind === "pair") return who.accessKey === key.access_key;
  return who?.kind === "key" && who.apiKey.startsWith(key.prefix);
}

async function copy(text: string, input: HTMLInputElement | null): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API outside secure contexts (plain http on a LAN address): copy the selection.
    input?.select();
    if (!document.execCommand("copy")) throw new Error("copy refused");
  }
}

function Secret({ id, label, value }: { id: string; label: string; value: string }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <div class="field">
      <label class="label" for={id}>
        {label}
      </label>
      <div class="copy-row">
        <input
          id={id}
          ref={input}
          type="text"
          readOnly
          value={value}
          spellcheck={false}
          onFocus={(e) => e.currentTarget.select()}
        />
        <button
          type="button"
          class="button"
          aria-label={t("keys.copyWhat", { what: label })}
          onClick={() =>
            copy(value, input.current).then(
              () => toast(t("keys.copied", { what: label }), { tone: "success" }),
              () => toast(t("keys.copyFailed"), { tone: "error" }),
            )
          }
        >
          {t("keys.copy")}
        </button>
      </div>
    </div>
  );
}

function Created({ made, onDone }: { made: NewKey; onDone: () => void }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [made.key_id]);
  return (
    <div class="new-key" role="region" aria-labelledby="new-key-title">
      <h3 id="new-key-title" ref={heading} tabIndex={-1}>
        {made.kind === "pair" ? t("keys.newPair") : t("keys.newStatic")}
      </h3>
      <p class="warning">{t("keys.onlyOnce")}</p>
      {made.kind === "pair" ? (
        <>
          <Secret id="new-access-key" label={t("account.accessKey")} value={made.access_key} />
          <Secret id="new-secret-key" label={t("account.secretKey")} value={made.secret_key} />
        </>
      ) : (
        <Secret id="new-api-key" label={t("account.apiKey")} value={made.api_key} />
      )}
      <button type="button" class="button primary" onClick={onDone}>
        {t("keys.saved")}
      </button>
    </div>
  );
}

function Row(props: { item: KeyView; onRevoked: () => void }) {
  const { item, onRevoked } = props;
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const label = keyLabel(item);
  const revoke = async () => {
    try {
      await kinema.revokeKey(item.key_id);
      setConfirming(false);
      onRevoked();
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <li class={`key ${item.revoked_at ? "is-revoked" : ""}`}>
      <div class="key-main">
        <code>{label}</code>
        <span class="chip">{t(`keys.kind.${item.kind}`)}</span>
        {inUseHere(item) && !item.revoked_at && <span class="chip">{t("keys.inUse")}</span>}
      </div>
      <p class="muted key-meta">
        {t("keys.created", { when: dateTime(item.created_at, locale.value) })}
        {item.revoked_at && ` · ${t("keys.revokedAt", { when: dateTime(item.revoked_at, locale.value) })}`}
      </p>
      {!item.revoked_at && !confirming && (
        <button
          type="button"
          class="button danger ghost small"
          aria-label={t("keys.revokeWhat", { key: label })}
          onClick={() => setConfirming(true)}
        >
          {t("keys.revoke")}
        </button>
      )}
      {confirming && (
        <div class="confirm" role="group" aria-label={t("keys.revokeWhat", { key: label })}>
          <p>
            {inUseHere(item) ? t("keys.confirmInUse", { key: label }) : t("keys.confirm", { key: label })}
          </p>
          <button type="button" class="button danger" onClick={() => void revoke()}>
            {t("keys.revokeYes")}
          </button>
          <button type="button" class="button ghost" onClick={() => setConfirming(false)} autoFocus>
            {t("keys.revokeNo")}
          </button>
        </div>
      )}
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />
        </p>
      )}
    </li>
  );
}

export function Keys() {
  const keys = useRemote(kinema.keys);
  const [made, setMade] = useState<NewKey | null>(null);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  const create = async (kind: KeyKind) => {
    setBusy(true);
    setProblem(null);
    try {
      setMade(await kinema.createKey(kind));
      void keys.reload();
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  // Active keys first, then revoked ones; newest first within each.
  const listed = [...(keys.data ?? [])].sort(
    (a, b) => Number(!!a.revoked_at) - Number(!!b.revoked_at) || b.created_at - a.created_at,
  );
  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">{t("keys.title")}</h2>
      <p class="hint">{t("keys.hint")}</p>
      <div class="button-row">
        <button type="button" class="button" disabled={busy} onClick={() => void create("pair")}>
          {t("keys.createPair")}
        </button>
        <button type="button" class="button" disabled={busy} onClick={() => void create("static")}>
          {t("keys.createStatic")}
        </button>
      </div>
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />
        </p>
      )}
      {made && <Created made={made} onDone={() => setMade(null)} />}
      {keys.data ? (
        listed.length ? (
          <ul class="keys">
            {listed.map((item) => (
              <Row key={item.key_id} item={item} onRevoked={() => void keys.reload()} />
            ))}
          </ul>
        ) : (
          <p class="muted">{t("keys.empty")}</p>
        )
      ) : (
        <RemoteState remote={keys} />
      )}
    </section>
  );
}
