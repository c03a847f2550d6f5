"""Runtime settings from the environment (`KINEMA_*`), built once in the composition root.

Command-line options override them; nothing below the CLI reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KINEMA_", extra="ignore")

    data_dir: Path = Path("kinema-data")
    torch_threads: int | None = None  # None: torch's default (all cores)
    builtin_weights: Path | None = None  # None: the weights shipped in the package
    models_file: Path | None = None  # a TOML list of open-weight models to serve besides the built-in one

    # --- the service (kinema serve / kinema worker) -------------------------------------------------
    database_url: str | None = None  # None: SQLite at <data_dir>/kinema.db
    database_pool: int = 32  # Postgres connections each process may hold (+8 in bursts)
    loop_reads: int = 4  # task-store reads each HTTP process's event loop runs at once (polls)
    loop_writes: int = 4  # ...and writes (creates without input images); the rest wait their turn
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = None  # how clients reach the server (links in results); None: from host/port
    tls_cert: Path | None = None
    tls_key: Path | None = None
    api_processes: int = 1  # HTTP processes of `kinema serve` sharing the port (SO_REUSEPORT)
    workers: int = 1  # in-process workers of `kinema serve` (0: only separate `kinema worker` processes)
    lease_seconds: float = 30.0
    retention_days: float = 30.0
    link_seconds: int = 24 * 3600  # how long a result link stays valid
    # Kling model names (kling-v1, kling-v2-master, ...) -> served Kinema model ids, as JSON;
    # "*" is the default for every name not listed.
    kling_models: dict[str, str] = {"*": "builtin"}
    allow_hosts: list[str] = []  # hosts that URL inputs and callbacks may reach despite the SSRF rules
    prices_file: Path | None = None  # TOML price table (credits per second / image per model); None: defaults
    secret: str | None = None  # signs media links; None: a random one kept in <data_dir>/secret.key
    session_hours: float = 7 * 24.0  # how long a studio sign-in lasts
    admin_password: str | None = None  # the first admin's studio password; None: a random one, printed once
    storage: str = "local"  # local | s3
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_prefix: str = ""

    def sqlite_path(self) -> Path:
        return self.data_dir / "kinema.db"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path()}"

    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_cert else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{scheme}://{host}:{self.port}"
