// The models the workers publish (GET /api/v1/models), with what each can do.
import { signal } from "@preact/signals";
import { ApiError, kinema } from "../api/client";
import type { Kind, ModelView } from "../api/views";

export const models = signal<ModelView[] | null>(null);
export const modelsError = signal<ApiError | null>(null);

export async function loadModels(): Promise<void> {
  try {
    models.value = await kinema.models();
    modelsError.value = null;
  } catch (error) {
    modelsError.value = error instanceof ApiError ? error : new ApiError(0, 0, String(error));
  }
}

export function usable(model: ModelView, kind: Kind): boolean {
  return model.online && !!model.capabilities && model.capabilities.kinds.includes(kind);
}

/** The model to preselect for a kind: the current one if it can do it, else the first that can. */
export function pickModel(list: readonly ModelView[], kind: Kind, current: string): string {
  const now = list.find((m) => m.id === current);
  if (now && usable(now, kind)) return current;
  return list.find((m) => usable(m, kind))?.id ?? current;
}
