// Queue: every running and queued task as a live card, then the ones that just ended.
import { useEffect } from "preact/hooks";
import { TaskCard } from "../components/TaskCard";
import { t } from "../i18n";
import { active, ended, loadRecent } from "../state/tasks";

export function Queue() {
  useEffect(() => void loadRecent().catch(() => undefined), []);
  return (
    <section class="screen queue" aria-labelledby="queue-title">
      <h1 id="queue-title" tabIndex={-1}>
        {t("queue.title")}
      </h1>
      <section aria-labelledby="active-title">
        <h2 id="active-title">{t("queue.active")}</h2>
        {active.value.length ? (
          <div class="cards">
            {active.value.map((task) => (
              <TaskCard key={task.id} task={task} />
            ))}
          </div>
        ) : (
          <p class="empty">{t("queue.empty")}</p>
        )}
      </section>
      <section aria-labelledby="ended-title">
        <h2 id="ended-title">{t("queue.ended")}</h2>
        {ended.value.length ? (
          <div class="cards">
            {ended.value.slice(0, 12).map((task) => (
              <TaskCard key={task.id} task={task} compact />
            ))}
          </div>
        ) : (
          <p class="empty">{t("queue.endedEmpty")}</p>
        )}
      </section>
    </section>
  );
}
