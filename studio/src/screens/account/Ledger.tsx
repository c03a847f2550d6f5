// The credit history (GET /api/v1/account/ledger): grants, purchases, charges, refunds and expiries,
// newest first, a page at a time.
import { useEffect, useState } from "preact/hooks";
import { kinema } from "../../api/client";
import { problemOf } from "../../api/refusal";
import type { LedgerEntry } from "../../api/views";
import { Say } from "../../components/Say";
import { locale, named, t, type Message } from "../../i18n";
import { credits, dateTime, shortId } from "../../lib/format";

export const LEDGER_PAGE = 20;

function Row({ entry }: { entry: LedgerEntry }) {
  const about = [entry.note, entry.task_id && t("ledger.task", { id: shortId(entry.task_id) })]
    .filter(Boolean)
    .join(" · ");
  return (
    <tr>
      <td>{dateTime(entry.created_at, locale.value)}</td>
      <td>{named("ledger.kind", entry.kind)}</td>
      <td class={`number ${entry.amount < 0 ? "minus" : "plus"}`}>
        {credits(entry.amount, locale.value, true)}
      </td>
      <td class="about">{about}</td>
    </tr>
  );
}

export function Ledger() {
  const [entries, setEntries] = useState<LedgerEntry[]>([]);
  const [total, setTotal] = useState<number | null>(null);
  const [loading, setLoading] = useState(true);
  const [problem, setProblem] = useState<Message | null>(null);
  const load = async (offset: number) => {
    setLoading(true);
    setProblem(null);
    try {
      const page = await kinema.ledger(offset, LEDGER_PAGE);
      setEntries((shown) => {
        // New entries since the last page shift the offsets: never show one twice.
        const kept = shown.slice(0, offset);
        const seen = new Set(kept.map((e) => e.entry_id));
        return [...kept, ...page.entries.filter((e) => !seen.has(e.entry_id))];
      });
      setTotal(page.total);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => void load(0), []);
  return (
    <section class="card" aria-labelledby="ledger-title">
      <h2 id="ledger-title">{t("ledger.title")}</h2>
      {total === 0 && <p class="muted">{t("ledger.empty")}</p>}
      {entries.length > 0 && (
        <div class="table-wrap" role="group" aria-labelledby="ledger-title" tabIndex={0}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t("ledger.when")}</th>
                <th scope="col">{t("ledger.kind")}</th>
                <th scope="col" class="number">
                  {t("ledger.amount")}
                </th>
                <th scope="col">{t("ledger.about")}</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <Row key={entry.entry_id} entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />{" "}
          <button type="button" class="button small" onClick={() => void load(entries.length)}>
            {t("common.retryLoad")}
          </button>
        </p>
      )}
      {loading && <p class="muted">{t("common.loading")}</p>}
      {total !== null && entries.length < total && !loading && (
        <div class="table-foot">
          <span class="muted">{t("library.count", { shown: entries.length, total })}</span>
          <button type="button" class="button" onClick={() => void load(entries.length)}>
            {t("library.more")}
          </button>
        </div>
      )}
    </section>
  );
}
