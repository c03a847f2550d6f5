// The shell: header with navigation and language, the current screen, toasts. Signing in starts
// the live task sync; signing out stops it and forgets what this tab knew.
import { useEffect, useRef } from "preact/hooks";
import { LanguageSelect } from "./components/LanguageSelect";
import { Say } from "./components/Say";
import { authProblem, credentials, restoring } from "./auth/session";
import { locale, t, type Key } from "./i18n";
import { percent } from "./lib/format";
import { href, route, type Route } from "./router";
import { Account } from "./screens/Account";
import { Create } from "./screens/Create";
import { Library } from "./screens/Library";
import { Queue } from "./screens/Queue";
import { loadModels, models } from "./state/models";
import { active, startSync, stopSync } from "./state/tasks";
import { dismiss, toasts } from "./state/toasts";

const NAV: { screen: Route["screen"]; key: Key; to: Route }[] = [
  { screen: "create", key: "nav.create", to: { screen: "create", kind: "text2video" } },
  { screen: "queue", key: "nav.queue", to: { screen: "queue" } },
  { screen: "library", key: "nav.library", to: { screen: "library" } },
  { screen: "account", key: "nav.account", to: { screen: "account" } },
];

const ICONS: Record<Route["screen"], string> = {
  create: "M12 5v14M5 12h14",
  queue: "M4 6h16M4 12h10M4 18h6",
  library: "M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z",
  account: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 20a8 8 0 0 1 16 0",
};

function Header() {
  const screen = route.value.screen;
  const count = active.value.length;
  return (
    <header class="top">
      <a class="brand" href="#/create/text2video">
        <span class="logo" aria-hidden="true" />
        <span>{t("app.name")}</span>
      </a>
      <nav class="nav" aria-label={t("app.nav")}>
        {NAV.map((item) => (
          <a
            key={item.screen}
            href={href(item.to)}
            aria-current={screen === item.screen ? "page" : undefined}
          >
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
              <path d={ICONS[item.screen]} />
            </svg>
            <span>{t(item.key)}</span>
            {item.screen === "queue" && count > 0 && (
              <span class="badge" aria-label={t("nav.activeCount", { count })}>
                {count}
              </span>
            )}
          </a>
        ))}
      </nav>
      <label class="language">
        <span class="sr-only">{t("app.language")}</span>
        <LanguageSelect id="language" />
      </label>
    </header>
  );
}

function Toasts() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((note) => (
        <div key={note.id} class={`toast ${note.tone}`}>
          <span>{note.text}</span>
          {note.link && (
            <a href={note.link.href} onClick={() => dismiss(note.id)}>
              {note.link.label}
            </a>
          )}
          <button
            type="button"
            class="toast-close"
            aria-label={t("common.close")}
            onClick={() => dismiss(note.id)}
          >
            ✕
          </button>
        </div>
      ))}
    </div>
  );
}

function Screen({ current }: { current: Route }) {
  if (!credentials.value && current.screen !== "account") {
    return (
      <>
        {!restoring.value && <p class="notice">{t("auth.required")}</p>}
        <Account />
      </>
    );
  }
  switch (current.screen) {
    case "create":
      return <Create kind={current.kind} />;
    case "queue":
      return <Queue />;
    case "library":
      return <Library taskId={current.taskId} index={current.index} />;
    default:
      return <Account />;
  }
}

function useTitle(): void {
  const running = active.value.find((task) => task.status === "processing");
  const screen = NAV.find((item) => item.screen === route.value.screen);
  const base = `${screen ? t(screen.key) : ""} · ${t("app.name")}`;
  useEffect(() => {
    document.title = running ? `${percent(running.progress)}% · ${base}` : base;
  }, [running?.progress, base]);
}

export function App() {
  const signedIn = credentials.value !== null;
  const current = route.value;
  const main = useRef<HTMLElement>(null);
  useEffect(() => {
    if (!signedIn) return stopSync();
    startSync();
    if (models.value === null) void loadModels();
  }, [signedIn]);
  useEffect(() => {
    document.documentElement.lang = locale.value;
  }, [locale.value]);
  useEffect(() => {
    // A new screen: move focus to its heading so screen readers announce it (tabs keep their focus).
    if (current.screen !== "create" && !(current.screen === "library" && current.taskId)) {
      main.current?.querySelector<HTMLElement>("h1")?.focus({ preventScroll: true });
    }
  }, [current.screen]);
  useTitle();
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          main.current?.focus();
        }}
      >
        {t("app.skip")}
      </a>
      <Header />
      {authProblem.value && (
        <p class="banner" role="alert">
          <Say message={authProblem.value} />
          {credentials.value && (
            <>
              {" "}
              <a href="#/account">{t("auth.goSignIn")}</a>
            </>
          )}
        </p>
      )}
      <main id="main" ref={main} tabIndex={-1}>
        <Screen current={current} />
      </main>
      <Toasts />
    </>
  );
}
