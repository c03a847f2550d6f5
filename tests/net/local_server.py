"""A real HTTP(S) server on loopback for the net tests: each test routes paths to small handler functions."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """Routes by path; records every request; `release` unblocks handlers that wait for the test's end."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for s in self.seen if s.path == path)


def reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(body)

    return route


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def _serve(state: LocalServer, wrap: Callable[[socket.socket], socket.socket] | None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            route = state.routes.get(self.path.split("?")[0], reply(404))
            route(self)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self) -> tuple[socket.socket, object]:
            sock, address = super().get_request()
            return (wrap(sock) if wrap else sock), address

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # clients that hang up early (size caps, timeouts) are expected here

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def start(
    wrap: Callable[[socket.socket], socket.socket] | None = None, scheme: str = "http"
) -> Iterator[LocalServer]:
    state = LocalServer(scheme=scheme)
    server = _serve(state, wrap)
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def tls_server(context: ssl.SSLContext) -> Iterator[LocalServer]:
    """The same server behind TLS; the handshake happens in the handler thread."""

    def wrap(sock: socket.socket) -> socket.socket:
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    return start(wrap, scheme="https")
