// Something a section loads from the server: loading, refused (with "try again"), or there.
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "../api/client";
import { say, t, type Message } from "../i18n";

export interface Remote<T> {
  data: T | null;
  problem: Message | null;
  loading: boolean;
  reload: () => Promise<void>;
}

/** An API failure as a message: the server's own sentence, or "could not reach the server". */
export function problemOf(error: unknown): Message {
  if (error instanceof ApiError && error.status) return { text: error.message };
  return { key: "error.network" };
}

/** Load once on mount (and again on `reload()`); `deps` changing loads again. */
export function useRemote<T>(load: () => Promise<T>, deps: unknown[] = []): Remote<T> {
  const [data, setData] = useState<T | null>(null);
  const [problem, setProblem] = useState<Message | null>(null);
  const [loading, setLoading] = useState(true);
  const reload = useCallback(async () => {
    setLoading(true);
    setProblem(null);
    try {
      setData(await load());
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setLoading(false);
    }
  }, deps);
  useEffect(() => void reload(), [reload]);
  return { data, problem, loading, reload };
}

/** "Loading…" before the first answer; the refusal with a "try again" button after a failed one. */
export function RemoteState({ remote }: { remote: Remote<unknown> }) {
  if (remote.problem) {
    return (
      <div class="card-error" role="alert">
        <span>{say(remote.problem)}</span>{" "}
        <button type="button" class="button small" onClick={() => void remote.reload()}>
          {t("common.retryLoad")}
        </button>
      </div>
    );
  }
  if (remote.loading && remote.data === null) return <p class="muted">{t("common.loading")}</p>;
  return null;
}
