"""Kinema's exceptions. Each message is one sentence that says what was wrong and how to fix it."""

from __future__ import annotations


class KinemaError(Exception):
    """Base class of every error Kinema raises on purpose."""


class InvalidRequest(KinemaError, ValueError):
    """A request or parameter that cannot be served as given."""


class ModelLoadError(KinemaError):
    """A model that cannot be loaded (missing weights, missing extra, bad file)."""


class UnknownModel(InvalidRequest):
    """A model id that no backend serves."""


class Cancelled(KinemaError):
    """Generation stopped because `should_stop()` said so."""


class MediaError(InvalidRequest):
    """An input image or video that cannot be decoded or breaks a limit."""
