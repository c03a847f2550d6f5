// The one way the studio talks to Kinema: a client typed by the generated OpenAPI schema
// (openapi-fetch), with the Authorization header added and the `{code, message, data}` envelope opened.
import createClient from "openapi-fetch";
import { authProblem, authorization, learnClock } from "../auth/session";
import type { paths } from "./schema";
import type { ErrorBody, ModelView, TaskCreate, TaskList, TaskView, ListQuery } from "./views";

/** A refusal: the HTTP status and Kling code, with the server's one-sentence reason. Status 0: no answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "http://localhost" });

api.use({
  async onRequest({ request }) {
    const header = await authorization();
    if (header) request.headers.set("Authorization", header);
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
    if (response.status === 401) authProblem.value = failure.message;
    throw failure;
  }
  return (data as { data: T }).data;
}

export const kinema = {
  models: async (): Promise<ModelView[]> =>
    (await unwrap<{ models: ModelView[] }>(api.GET("/api/v1/models"))).models,
  create: (body: TaskCreate): Promise<TaskView> => unwrap(api.POST("/api/v1/tasks", { body })),
  task: (id: string): Promise<TaskView> =>
    unwrap(api.GET("/api/v1/tasks/{task_id}", { params: { path: { task_id: id } } })),
  list: (query: ListQuery): Promise<TaskList> => unwrap(api.GET("/api/v1/tasks", { params: { query } })),
  cancel: (id: string): Promise<TaskView> =>
    unwrap(api.POST("/api/v1/tasks/{task_id}/cancel", { params: { path: { task_id: id } } })),
  retry: (id: string): Promise<TaskView> =>
    unwrap(api.POST("/api/v1/tasks/{task_id}/retry", { params: { path: { task_id: id } } })),
  remove: (id: string): Promise<{ id: string; deleted: boolean }> =>
    unwrap(api.DELETE("/api/v1/tasks/{task_id}", { params: { path: { task_id: id } } })),
};
