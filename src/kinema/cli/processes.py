"""Several HTTP processes on one port for `kinema serve --api-processes N` (Linux SO_REUSEPORT).

One Python process answers HTTP on one core (the GIL). With N > 1 the main process binds its socket
with SO_REUSEPORT and starts N - 1 more `kinema serve --workers 0` processes that bind the same port the
same way; the kernel spreads new connections across them. Only the main process runs workers, the
upkeep round and the first-start setup; every process runs a callback sender (they share the outbox
through leases). The extra processes stop with the main one: it terminates them on the way out, and each
watches its parent, so a `kill -9` of the main process does not leave them serving.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from kinema.errors import InvalidRequest
from kinema.settings import Settings

PARENT_ENV = "KINEMA_API_PARENT_PID"
WATCH_SECONDS = 1.0


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too (SO_REUSEPORT)."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise InvalidRequest("--api-processes above 1 needs SO_REUSEPORT (Linux or BSD); use 1 here")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidRequest(f"cannot listen on {host}:{port}: {exc.strerror}; pick another --port") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def child_command(settings: Settings) -> list[str]:
    """The command line of one extra HTTP process: the main process's address, data and TLS, no workers."""
    args = [
        "serve",
        "--reuse-port",
        "--workers", "0",
        "--api-processes", "1",
        "--host", settings.host,
        "--port", str(settings.port),
        "--data-dir", str(settings.data_dir),
    ]  # fmt: skip
    if settings.database_url:
        args += ["--database-url", settings.database_url]
    if settings.public_url:
        args += ["--public-url", settings.public_url]
    if settings.tls_cert and settings.tls_key:
        args += ["--tls-cert", str(settings.tls_cert), "--tls-key", str(settings.tls_key)]
    return [sys.executable, "-c", "from kinema.cli.main import app; app()", *args]


def start_children(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    return [subprocess.Popen(child_command(settings), env=env) for _ in range(count)]


def stop_children(children: Sequence[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def watch_parent() -> None:
    """In an extra process: stop (SIGTERM to self, uvicorn shuts down gracefully) once the main process
    that started it is gone."""
    expected = os.environ.get(PARENT_ENV)
    if not expected:
        return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(WATCH_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
