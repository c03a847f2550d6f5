// The plan, the balance and the slots in use now (GET /api/v1/account).
import type { AccountView, PlanView, Slots } from "../../api/views";
import { RemoteState, type Remote } from "../../components/Remote";
import { locale, t } from "../../i18n";
import { credits } from "../../lib/format";

// The `unlimited` plan writes "no limit" as a million slots (kinema.accounts.plans); so do we.
const NO_LIMIT = 1_000_000;

/** A limit, or null for none: null, 0 and the `unlimited` plan's million all mean no limit. */
function limitOf(value: number | null | undefined): number | null {
  return value && value < NO_LIMIT ? value : null;
}

function limit(value: number | null | undefined): string {
  return limitOf(value)?.toLocaleString(locale.value) ?? t("summary.noLimit");
}

function slots({ used, limit: most }: Slots): string {
  const known = limitOf(most);
  if (known === null) return t("summary.slotsUnlimited", { used });
  return t("summary.slotsValue", { used, limit: known });
}

function allowance(plan: PlanView): string {
  const parts = [];
  if (plan.daily_free_credits) {
    parts.push(t("summary.daily", { amount: credits(plan.daily_free_credits, locale.value) }));
  }
  if (plan.monthly_credits) {
    parts.push(t("summary.monthly", { amount: credits(plan.monthly_credits, locale.value) }));
  }
  return parts.join(" · ") || t("summary.noAllowance");
}

function Rows({ account }: { account: AccountView }) {
  const plan = account.plan;
  const rows: [string, string][] = [
    [t("summary.plan"), plan.name],
    [t("summary.allowance"), plan.metered === false ? t("summary.notMetered") : allowance(plan)],
    [t("summary.videoSlots"), slots(account.concurrency.video)],
    [t("summary.imageSlots"), slots(account.concurrency.image)],
  ];
  if (plan.max_duration_s) {
    rows.push([t("summary.longest"), t("common.seconds", { value: plan.max_duration_s })]);
  }
  if (plan.allowed_modes) {
    const modes = plan.allowed_modes.map((m) => (m === "std" || m === "pro" ? t(`create.mode.${m}`) : m));
    rows.push([t("summary.modes"), modes.join(", ")]);
  }
  rows.push([
    t("summary.models"),
    plan.allowed_models ? plan.allowed_models.join(", ") : t("summary.allModels"),
  ]);
  rows.push([t("summary.rate"), limit(plan.requests_per_minute)]);
  if (plan.priority !== undefined) rows.push([t("summary.priority"), String(plan.priority)]);
  return (
    <dl class="params">
      {rows.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

export function Summary({ remote }: { remote: Remote<AccountView> }) {
  const account = remote.data;
  return (
    <section class="card summary" aria-labelledby="summary-title">
      <h2 id="summary-title">{t("summary.title")}</h2>
      {account ? (
        <>
          <p class="balance">
            <span class="label">{t("summary.balance")}</span>
            <span class="balance-value">
              {t("summary.credits", { amount: credits(account.balance, locale.value) })}
            </span>
          </p>
          {account.disabled && (
            <p class="form-error" role="alert">
              {t("summary.disabled")}
            </p>
          )}
          <Rows account={account} />
        </>
      ) : (
        <RemoteState remote={remote} />
      )}
    </section>
  );
}
