"""The models file: a TOML list of the open-weight models one Kinema instance serves.

Each `[[models]]` table names an `id`, a backend `family` and that family's options (`weights`,
`revision`, `dtype`, `device`, `offload`, ...), which reach the backend class as keyword arguments.
A relative `weights` path is read relative to the file. Reading the file loads no model.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinema.backends.registry import ModelEntry
from kinema.errors import ModelLoadError

RESERVED = frozenset({"builtin"})


class ModelSpec(BaseModel):
    """One `[[models]]` table; keys other than `id` and `family` are the backend's options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    family: str = Field(min_length=1)
    weights: str | None = None

    def entry(self, base: Path) -> ModelEntry:
        options = dict(self.model_extra or {})
        if self.weights is not None:
            options["weights"] = resolve_weights(self.weights, base)
        return ModelEntry(id=self.id, family=self.family, options=options)


def resolve_weights(weights: str, base: Path) -> str:
    """A folder relative to the models file becomes absolute; a hub id (`owner/name`) stays as it is."""
    path = Path(weights).expanduser()
    if path.is_absolute():
        return str(path)
    if (base / path).exists() or weights.startswith("."):
        return str((base / path).resolve())
    return weights


def read_models_file(path: Path) -> tuple[ModelEntry, ...]:
    """The models listed in `path`, checked for shape and unique ids (their weights are not touched)."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(
            f"the models file {path} does not exist; create it or fix KINEMA_MODELS_FILE"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ModelLoadError(f"the models file {path} is not valid TOML: {exc}") from None
    tables = data.get("models", [])
    if not isinstance(tables, list):
        raise ModelLoadError(f"the models file {path} must list models as [[models]] tables")
    entries = tuple(_entry(table, index, path) for index, table in enumerate(tables, start=1))
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen or entry.id in RESERVED:
            raise ModelLoadError(f"the models file {path} uses the model id {entry.id!r} twice or reserved")
        seen.add(entry.id)
    return entries


def _entry(table: Any, index: int, path: Path) -> ModelEntry:
    try:
        return ModelSpec.model_validate(table).entry(path.parent)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "table"
        raise ModelLoadError(f"the models file {path}, model #{index}: {where}: {first['msg']}") from None


def add_model(path: Path, entry: ModelEntry) -> None:
    """Append `entry` to the models file at `path` (created if missing); an id already there is refused."""
    existing = read_models_file(path) if path.exists() else ()
    if any(e.id == entry.id for e in existing):
        raise ModelLoadError(f"the models file {path} already serves {entry.id!r}; choose another id")
    options = dict(entry.options)
    if "weights" in options and Path(options["weights"]).is_absolute():
        relative = os.path.relpath(options["weights"], path.parent.resolve())
        options["weights"] = relative if relative.startswith(".") else f"./{relative}"
    lines = ["", "[[models]]", f"id = {_toml(entry.id)}", f"family = {_toml(entry.family)}"]
    lines += [f"{key} = {_toml(value)}" for key, value in options.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write("\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    """The TOML spelling of the plain values a models file holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the characters ids and paths use
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to a models file")
