"""Finding backends: families register through the `kinema.backends` entry point group.

The built-in families register the same way a third-party package would (pyproject.toml
`[project.entry-points."kinema.backends"]`). A `Registry` maps served model ids to a family and its
options, creates each backend once, and says clearly when a model id is unknown. A model that cannot
be loaded is reported with its reason (`status`); it never takes the other models down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from kinema.backends.base import Backend
from kinema.errors import KinemaError, ModelLoadError, UnknownModel
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


@dataclass(frozen=True)
class ModelStatus:
    """One served model as the registry sees it: what it can do, or why it cannot be used."""

    id: str
    family: str
    capabilities: Capabilities | None = None
    error: str | None = None


class Registry:
    def __init__(self, models: tuple[ModelEntry, ...] = DEFAULT_MODELS) -> None:
        self.models = {m.id: m for m in models}
        if len(self.models) != len(models):
            raise ModelLoadError("two served models share one id; give each model its own id")
        self._backends: dict[str, Backend] = {}

    def get(self, model_id: str) -> Backend:
        """The backend serving `model_id`, created on first use."""
        if model_id not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise UnknownModel(f"unknown model {model_id!r}; served models: {known}")
        if model_id not in self._backends:
            self._backends[model_id] = self._create(self.models[model_id])
        return self._backends[model_id]

    def _create(self, entry: ModelEntry) -> Backend:
        found = families()
        if entry.family not in found:
            raise ModelLoadError(
                f"no backend family {entry.family!r} is installed for model {entry.id!r}; "
                f"installed: {', '.join(sorted(found))}"
            )
        try:
            cls = found[entry.family].load()
        except ImportError as exc:
            raise ModelLoadError(f"the {entry.family!r} backend cannot be imported ({exc})") from None
        try:
            backend: Backend = cls(entry.id, **entry.options)
        except TypeError as exc:  # an option this family does not take
            raise ModelLoadError(
                f"model {entry.id!r}: {exc}; see docs/models.md for the options of {entry.family!r}"
            ) from None
        return backend

    def status(self) -> list[ModelStatus]:
        """Every served model with its capabilities or the reason it cannot be used."""
        listing = []
        for entry in self.models.values():
            try:
                caps = self.get(entry.id).capabilities()
            except KinemaError as exc:
                listing.append(ModelStatus(entry.id, entry.family, error=str(exc)))
            except Exception as exc:  # a broken third-party backend must not hide the others
                listing.append(ModelStatus(entry.id, entry.family, error=f"{type(exc).__name__}: {exc}"))
            else:
                listing.append(ModelStatus(entry.id, entry.family, capabilities=caps))
        return listing

    def capabilities(self) -> list[Capabilities]:
        """The capabilities of the models that can be used (see `status` for the others)."""
        return [s.capabilities for s in self.status() if s.capabilities is not None]
