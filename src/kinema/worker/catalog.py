"""The models a worker publishes: a registry's status as the plain JSON the workers table holds.

Each entry is `{"id", "family", "capabilities", "error"}`: capabilities as JSON when the model can be
used, else the reason it cannot (docs/service.md, "Models catalog"). Typed against the registry's
shape, not its class, so the worker imports no backend.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from kinema.spec import Capabilities


class ModelState(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def capabilities(self) -> Capabilities | None: ...
    @property
    def error(self) -> str | None: ...


class HasStatus(Protocol):
    def status(self) -> Sequence[ModelState]: ...


def catalog_of(
    registry: HasStatus, models: Collection[str] | None = None
) -> Callable[[], list[dict[str, Any]]]:
    """A `Worker.catalog` callable listing `registry`'s models (only `models`, when given)."""

    def catalog() -> list[dict[str, Any]]:
        return [
            {
                "id": state.id,
                "family": state.family,
                "capabilities": None
                if state.capabilities is None
                else state.capabilities.model_dump(mode="json"),
                "error": state.error,
            }
            for state in registry.status()
            if models is None or state.id in models
        ]

    return catalog
