"""Runtime settings from the environment (`KINEMA_*`), built once in the composition root."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINEMA_", extra="ignore")

    data_dir: Path = Path("kinema-data")
    torch_threads: int | None = None  # None: torch's default (all cores)
    builtin_weights: Path | None = None  # None: the weights shipped in the package
    models_file: Path | None = None  # a TOML list of open-weight models to serve besides the built-in one
