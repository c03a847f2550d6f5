// The browsers signed in to this account (GET /api/v1/account/sessions): sign one out, or every one
// but this.
import { useEffect, useState } from "preact/hooks";
import { kinema } from "../../api/client";
import { problemOf } from "../../api/refusal";
import type { WebSession } from "../../api/views";
import { RemoteState, useRemote } from "../../components/Remote";
import { Say } from "../../components/Say";
import { locale, t, type Message } from "../../i18n";
import { browserName, dateTime } from "../../lib/format";

export function Sessions({ stamp }: { stamp: number }) {
  const sessions = useRemote(kinema.sessions);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Message | null>(null);
  useEffect(() => {
    if (stamp) void sessions.reload();
  }, [stamp]);

  const end = async (ended: WebSession[]) => {
    setBusy(true);
    setProblem(null);
    try {
      for (const session of ended) await kinema.endSession(session.session_id);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
      void sessions.reload();
    }
  };
  const list = sessions.data ?? [];
  const others = list.filter((s) => !s.current);
  return (
    <section class="card" aria-labelledby="sessions-title">
      <h2 id="sessions-title">{t("sessions.title")}</h2>
      {sessions.data ? (
        list.length ? (
          <ul class="sessions">
            {list.map((session) => {
              const browser = browserName(session.user_agent);
              return (
                <li key={session.session_id} class="session">
                  <div>
                    <strong>{browser}</strong>
                    {session.current && <span class="chip">{t("sessions.current")}</span>}
                    <p class="muted key-meta">
                      {t("sessions.since", {
                        when: dateTime(session.created_at, locale.value),
                        until: dateTime(session.expires_at, locale.value),
                      })}
                    </p>
                  </div>
                  {!session.current && (
                    <button
                      type="button"
                      class="button small"
                      disabled={busy}
                      aria-label={t("sessions.endWhat", { browser })}
                      onClick={() => void end([session])}
                    >
                      {t("sessions.end")}
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        ) : (
          <p class="muted">{t("sessions.empty")}</p>
        )
      ) : (
        <RemoteState remote={sessions} />
      )}
      {others.length > 0 && (
        <button type="button" class="button danger ghost" disabled={busy} onClick={() => void end(others)}>
          {t("sessions.endOthers")}
        </button>
      )}
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />
        </p>
      )}
    </section>
  );
}
