// Something a section loads from the server: loading, refused (with "try again"), or there.
import { useCallback, useEffect, useState } from "preact/hooks";
import { problemOf } from "../api/refusal";
import { t, type Message } from "../i18n";
import { Say } from "./Say";

export interface Remote<T> {
  data: T | null;
  problem: Message | null;
  loading: boolean;
  reload: () => Promise<void>;
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
        <span>
          <Say message={remote.problem} />
        </span>{" "}
        <button type="button" class="button small" onClick={() => void remote.reload()}>
          {t("common.retryLoad")}
        </button>
      </div>
    );
  }
  if (remote.loading && remote.data === null) return <p class="muted">{t("common.loading")}</p>;
  return null;
}
