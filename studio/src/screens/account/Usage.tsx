// What the account used in the last 30 days (GET /api/v1/account/usage), and the same as a CSV file.
// Signed in by cookie, a plain link downloads it; signed in by key, the file is fetched with the
// Authorization header and saved from a blob.
import { useState } from "preact/hooks";
import { ApiError, kinema } from "../../api/client";
import { problemOf } from "../../api/refusal";
import type { UsageRow } from "../../api/views";
import { authHeaders, credentials } from "../../auth/session";
import { RemoteState, useRemote } from "../../components/Remote";
import { Say } from "../../components/Say";
import { locale, named, t, type Message } from "../../i18n";
import { credits, dateTime, lastDays, shortId } from "../../lib/format";

export const USAGE_DAYS = 30;
const CSV_NAME = "kinema-usage.csv";

export function usageCsvUrl(start: number, end: number): string {
  return `/api/v1/account/usage?format=csv&start_time=${start}&end_time=${end}`;
}

/** Seconds of video and images made, and credits spent, over the rows. */
export function usageTotals(rows: readonly UsageRow[]): { seconds: number; images: number; credits: number } {
  return rows.reduce(
    (sum, row) => ({
      seconds: sum.seconds + row.seconds,
      images: sum.images + row.images,
      credits: sum.credits + row.credits,
    }),
    { seconds: 0, images: 0, credits: 0 },
  );
}

async function saveCsv(url: string): Promise<void> {
  const response = await fetch(url, { headers: await authHeaders("GET"), credentials: "same-origin" });
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { code?: number; message?: string };
    throw new ApiError(response.status, body.code ?? 0, body.message ?? response.statusText);
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = CSV_NAME;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

function Download({ url }: { url: string }) {
  const [problem, setProblem] = useState<Message | null>(null);
  if (credentials.value?.kind === "session") {
    return (
      <a class="button" href={url} download={CSV_NAME}>
        {t("usage.csv")}
      </a>
    );
  }
  return (
    <>
      <button
        type="button"
        class="button"
        onClick={() => {
          setProblem(null);
          saveCsv(url).catch((error: unknown) => setProblem(problemOf(error)));
        }}
      >
        {t("usage.csv")}
      </button>
      {problem && (
        <p class="card-error" role="alert">
          <Say message={problem} />
        </p>
      )}
    </>
  );
}

function amount(row: UsageRow): string {
  if (row.images) return t("usage.images", { count: row.images });
  return t("common.seconds", { value: row.seconds });
}

function Table({ rows }: { rows: UsageRow[] }) {
  const sum = usageTotals(rows);
  return (
    <>
      <p>
        {t("usage.totals", {
          tasks: rows.length,
          seconds: sum.seconds,
          images: sum.images,
          credits: credits(sum.credits, locale.value),
        })}
      </p>
      <div class="table-wrap" role="group" aria-labelledby="usage-title" tabIndex={0}>
        <table>
          <thead>
            <tr>
              <th scope="col">{t("ledger.when")}</th>
              <th scope="col">{t("library.kind")}</th>
              <th scope="col">{t("library.model")}</th>
              <th scope="col" class="number">
                {t("usage.made")}
              </th>
              <th scope="col" class="number">
                {t("usage.credits")}
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => (
              <tr key={`${row.task_id}-${i}`}>
                <td>{dateTime(row.charged_at, locale.value)}</td>
                <td>
                  {named("kind", row.kind)} <span class="muted">{shortId(row.task_id)}</span>
                </td>
                <td>
                  {row.model} · {row.mode}
                </td>
                <td class="number">{amount(row)}</td>
                <td class="number">{credits(row.credits, locale.value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function Usage() {
  const [period] = useState(() => lastDays(USAGE_DAYS, Date.now()));
  const usage = useRemote(() => kinema.usage(period.start, period.end));
  return (
    <section class="card" aria-labelledby="usage-title">
      <div class="card-head-row">
        <h2 id="usage-title">{t("usage.title", { days: USAGE_DAYS })}</h2>
        <Download url={usageCsvUrl(period.start, period.end)} />
      </div>
      {usage.data ? (
        usage.data.length ? (
          <Table rows={usage.data} />
        ) : (
          <p class="muted">{t("usage.empty")}</p>
        )
      ) : (
        <RemoteState remote={usage} />
      )}
    </section>
  );
}
