// The one way the studio talks to Kinema: a client typed by the generated OpenAPI schema
// (openapi-fetch), with the caller's proof added (an Authorization header, or the session cookie plus
// X-CSRF-Token on changes) and the `{code, message, data}` envelope opened.
import createClient from "openapi-fetch";
import { authHeaders, authProblem, credentials, learnClock, setCredentials } from "../auth/session";
import { ApiError, problemOf } from "./refusal";
import type { paths } from "./schema";
import type {
  AccountView,
  ErrorBody,
  KeyKind,
  KeyView,
  LedgerPage,
  ListQuery,
  ModelView,
  NewKey,
  PasswordChange,
  SessionView,
  SignInBody,
  TaskCreate,
  TaskList,
  TaskView,
  UsageRow,
  WebSession,
} from "./views";

export { ApiError } from "./refusal";

export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? "http://localhost",
  credentials: "same-origin", // the session cookie; the default, said out loud
  fetch: (request) => globalThis.fetch(request), // looked up per call, so tests can stand in for it
});

api.use({
  async onRequest({ request }) {
    for (const [name, value] of Object.entries(await authHeaders(request.method))) {
      request.headers.set(name, value);
    }
    return request;
  },
  onResponse({ response }) {
    learnClock(response.headers.get("date"));
    return response;
  },
});

interface Answer {
  data?: unknown;
  error?: unknown;
  response: Response;
}

/** What a 401 means for who we are: a cookie session that ended is a sign-out; a key is kept, flagged. */
export function refused(failure: ApiError): void {
  const who = credentials.value;
  if (failure.status !== 401 || !who) return;
  if (who.kind === "session") {
    if (failure.code !== 1001 && failure.code !== 1004) return;
    setCredentials(null);
    authProblem.value = { key: "auth.sessionEnded" };
  } else {
    authProblem.value = problemOf(failure);
  }
}

/** Wait for a typed call and return its `data`, or throw an ApiError. */
export async function unwrap<T>(call: Promise<Answer>): Promise<T> {
  let answer: Answer;
  try {
    answer = await call;
  } catch (error) {
    throw new ApiError(0, 0, error instanceof Error ? error.message : String(error));
  }
  const { data, error, response } = answer;
  if (error !== undefined || !response.ok) {
    const body = (error ?? {}) as Partial<ErrorBody>;
    const failure = new ApiError(response.status, body.code ?? 0, body.message ?? response.statusText);
    refused(failure);
    throw failure;
  }
  return (data as { data: T }).data;
}

const path = <K extends string>(name: K, value: string) =>
  ({ params: { path: { [name]: value } } }) as {
    params: { path: Record<K, string> };
  };

export const kinema = {
  models: async (): Promise<ModelView[]> =>
    (await unwrap<{ models: ModelView[] }>(api.GET("/api/v1/models"))).models,
  create: (body: TaskCreate): Promise<TaskView> => unwrap(api.POST("/api/v1/tasks", { body })),
  task: (id: string): Promise<TaskView> => unwrap(api.GET("/api/v1/tasks/{task_id}", path("task_id", id))),
  list: (query: ListQuery): Promise<TaskList> => unwrap(api.GET("/api/v1/tasks", { params: { query } })),
  cancel: (id: string): Promise<TaskView> =>
    unwrap(api.POST("/api/v1/tasks/{task_id}/cancel", path("task_id", id))),
  retry: (id: string): Promise<TaskView> =>
    unwrap(api.POST("/api/v1/tasks/{task_id}/retry", path("task_id", id))),
  remove: (id: string): Promise<{ id: string; deleted: boolean }> =>
    unwrap(api.DELETE("/api/v1/tasks/{task_id}", path("task_id", id))),

  signIn: (body: SignInBody): Promise<SessionView> => unwrap(api.POST("/api/v1/session", { body })),
  session: (): Promise<SessionView> => unwrap(api.GET("/api/v1/session")),
  signOut: (): Promise<{ signed_out: boolean }> => unwrap(api.DELETE("/api/v1/session")),

  account: (): Promise<AccountView> => unwrap(api.GET("/api/v1/account")),
  ledger: (offset: number, limit: number): Promise<LedgerPage> =>
    unwrap(api.GET("/api/v1/account/ledger", { params: { query: { offset, limit } } })),
  usage: async (start_time: number, end_time: number): Promise<UsageRow[]> => {
    const query = { start_time, end_time, format: "json" as const };
    return (await unwrap<{ rows: UsageRow[] }>(api.GET("/api/v1/account/usage", { params: { query } }))).rows;
  },
  keys: async (): Promise<KeyView[]> =>
    (await unwrap<{ keys: KeyView[] }>(api.GET("/api/v1/account/keys"))).keys,
  createKey: (kind: KeyKind): Promise<NewKey> => unwrap(api.POST("/api/v1/account/keys", { body: { kind } })),
  revokeKey: (id: string): Promise<KeyView> =>
    unwrap(api.DELETE("/api/v1/account/keys/{key_id}", path("key_id", id))),
  changePassword: (body: PasswordChange): Promise<{ has_password: boolean }> =>
    unwrap(api.PUT("/api/v1/account/password", { body })),
  sessions: async (): Promise<WebSession[]> =>
    (await unwrap<{ sessions: WebSession[] }>(api.GET("/api/v1/account/sessions"))).sessions,
  endSession: (id: string): Promise<{ ended: number }> =>
    unwrap(api.DELETE("/api/v1/account/sessions/{session_id}", path("session_id", id))),
};
