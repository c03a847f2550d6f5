"""Finding backends: families register through the `kinema.backends` entry point group.

The built-in families register the same way a third-party package would (pyproject.toml
`[project.entry-points."kinema.backends"]`). A `Registry` maps served model ids to a family and its
options, creates each backend once, and says clearly when a model id is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from kinema.backends.base import Backend
from kinema.errors import ModelLoadError, UnknownModel
from kinema.spec import Capabilities

GROUP = "kinema.backends"


def families() -> dict[str, Any]:
    """Backend classes by family name, from installed entry points (loaded lazily by `load`)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


@dataclass(frozen=True)
class ModelEntry:
    """One served model: its id, its backend family and keyword options for the backend."""

    id: str
    family: str
    options: dict[str, Any] = field(default_factory=dict)


DEFAULT_MODELS = (ModelEntry(id="builtin", family="builtin"),)


class Registry:
    def __init__(self, models: tuple[ModelEntry, ...] = DEFAULT_MODELS) -> None:
        self.models = {m.id: m for m in models}
        self._backends: dict[str, Backend] = {}

    def get(self, model_id: str) -> Backend:
        """The backend serving `model_id`, created on first use."""
        if model_id not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise UnknownModel(f"unknown model {model_id!r}; served models: {known}")
        if model_id not in self._backends:
            entry = self.models[model_id]
            found = families()
            if entry.family not in found:
                raise ModelLoadError(
                    f"no backend family {entry.family!r} is installed for model {model_id!r}; "
                    f"installed: {', '.join(sorted(found))}"
                )
            cls = found[entry.family].load()
            self._backends[model_id] = cls(model_id, **entry.options)
        return self._backends[model_id]

    def capabilities(self) -> list[Capabilities]:
        return [self.get(model_id).capabilities() for model_id in self.models]
