"""Server-side HTTP requests to URLs that clients give us, safe against SSRF.

A URL is vetted before any byte is sent: http(s) only, no credentials, and every address its host
resolves to must be public unless an operator allowed the host. The connection then goes to exactly
the vetted address (no second DNS lookup that could answer differently), while the Host header and TLS
SNI and certificate checks use the hostname. Redirect hops are vetted again; size and total time are
capped. This module knows nothing about images, tasks or the API.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin, urlsplit

import httpcore
import httpx

from kinema.errors import InvalidRequest

if TYPE_CHECKING:
    from kinema.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Kinema (server-side fetch)"
ALLOW_HINT = "Kinema does not fetch internal addresses (an operator can allow a host with KINEMA_ALLOW_HOSTS)"

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = ipaddress.ip_address("169.254.169.254")


class FetchError(InvalidRequest):
    """A URL that could not be fetched: refused, unreachable, too slow, too large or not a 2xx."""


class BlockedURL(FetchError):
    """A URL refused by policy (scheme, credentials, internal address); retrying cannot help."""


@dataclass(frozen=True)
class FetchPolicy:
    """What server-side requests may reach and how much they may cost.

    `allow_hosts` holds hostnames or IP addresses that may resolve to (or be) internal addresses.
    """

    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.timeout_s <= 0 or self.max_redirects < 0:
            raise ValueError(
                f"invalid FetchPolicy(max_bytes={self.max_bytes}, timeout_s={self.timeout_s}, "
                f"max_redirects={self.max_redirects}); use positive limits and max_redirects >= 0"
            )
        object.__setattr__(self, "allow_hosts", frozenset(_normalize_host(h) for h in self.allow_hosts))

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(allow_hosts=frozenset(settings.allow_hosts))

    def allows(self, host: str, address: IPAddress | None = None) -> bool:
        """True if `host` (or the address it resolved to) is on the operator's allow-list."""
        return host in self.allow_hosts or (address is not None and str(address) in self.allow_hosts)


@dataclass(frozen=True)
class _Target:
    url: httpcore.URL
    display: str  # the URL as shown in messages
    host_header: bytes
    addresses: tuple[IPAddress, ...]


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """GET `url` and return the body; follow at most `policy.max_redirects` vetted redirects."""
    deadline = time.monotonic() + policy.timeout_s
    current = url
    for _ in range(policy.max_redirects + 1):
        target = _vet(current, policy, deadline)
        with _exchange(b"GET", target, policy=policy, deadline=deadline) as response:
            if response.status in REDIRECT_STATUSES:
                location = _header(response, b"location")
                if location is None:
                    raise FetchError(
                        f"URL {target.display} redirected without a Location header; link the file directly"
                    )
                current = urljoin(current, location)
                continue
            if not 200 <= response.status < 300:
                raise FetchError(
                    f"URL {target.display} answered HTTP {response.status}; "
                    "check that the link is public and has not expired"
                )
            return _read_capped(response, target, policy, deadline)
    raise FetchError(
        f"URL {_display(url)} redirected more than {policy.max_redirects} times; link the file directly"
    )


def post(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
    """POST `body` to `url` without following redirects and return the HTTP status."""
    deadline = time.monotonic() + policy.timeout_s
    target = _vet(url, policy, deadline)
    with _exchange(b"POST", target, policy=policy, deadline=deadline, headers=headers, body=body) as response:
        return response.status


def check_target(url: str, policy: FetchPolicy) -> list[IPAddress]:
    """Vet `url` as `fetch` would and return the addresses a request would use; raise BlockedURL if not."""
    return list(_vet(url, policy, time.monotonic() + policy.timeout_s).addresses)


def address_problem(address: IPAddress) -> str | None:
    """Why Kinema refuses to connect to `address` ("a loopback address"), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return None if problem is None else f"{problem} ({embedded} inside IPv6)"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address == _METADATA:
        return "the cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


# --- vetting -----------------------------------------------------------------------------------------


def _vet(url: str, policy: FetchPolicy, deadline: float) -> _Target:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url.strip()):
        raise BlockedURL(f"URL {_display(url)} contains spaces or control characters; percent-encode them")
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise BlockedURL(f"URL {_display(url)} is not a valid URL; check its host part") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise BlockedURL(f"URL {_display(url)} is not http or https; Kinema only fetches http(s) URLs")
    if "@" in parts.netloc:
        raise BlockedURL("a URL with a user name or password is not accepted; use a link without credentials")
    try:
        port = parts.port if parts.port is not None else (443 if scheme == "https" else 80)
    except ValueError:
        raise BlockedURL(f"URL {_display(url)} has an invalid port; use a port between 1 and 65535") from None
    if not parts.hostname:
        raise BlockedURL(f"URL {_display(url)} has no host; send an absolute http(s) URL")
    host = _normalize_host(parts.hostname)
    addresses = _resolve(host, port, deadline, display=_display(url))
    for address in addresses:
        problem = address_problem(address)
        if problem is not None and not policy.allows(host, address):
            where = (
                f"points to {problem}" if _literal(host) is not None else f"resolves to {problem} ({address})"
            )
            raise BlockedURL(f"URL {_display(url)} {where}; {ALLOW_HINT}")
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~") + (
        "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?") if parts.query else ""
    )
    bracketed = f"[{host}]" if ":" in host else host
    default_port = port == (443 if scheme == "https" else 80)
    return _Target(
        url=httpcore.URL(scheme=scheme.encode(), host=host.encode(), port=port, target=target.encode()),
        display=_display(url),
        host_header=(bracketed if default_port else f"{bracketed}:{port}").encode(),
        addresses=tuple(addresses),
    )


def _normalize_host(host: str) -> str:
    """Lower-case, no brackets or trailing dot, IDNA for non-ASCII names, canonical form for IPs."""
    host = host.strip().strip("[]").rstrip(".").lower()
    literal = _literal(host)
    if literal is not None:
        return str(literal)
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise BlockedURL(f"host {host!r} is not a valid domain name; check the URL") from None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(host: str, port: int, deadline: float, *, display: str) -> list[IPAddress]:
    """All addresses of `host`, looked up in a helper thread so a slow resolver cannot pass the deadline."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    answer: list[list[IPAddress] | OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            answer.append(_unique(ipaddress.ip_address(info[4][0]) for info in infos))
        except OSError as exc:
            answer.append(exc)
        except UnicodeError as exc:  # an empty or over-long label ("a..b"): the name cannot be looked up
            answer.append(OSError(f"invalid host name ({exc})"))

    worker = threading.Thread(target=lookup, name="kinema-dns", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if not answer:
        raise FetchError(f"URL {display}: looking up {host} took too long; check the host name or try again")
    result = answer[0]
    if isinstance(result, OSError) or not result:
        reason = result if isinstance(result, OSError) else "no addresses"
        raise FetchError(f"URL {display}: host {host} could not be resolved ({reason}); check the host name")
    return result


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


def _display(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[: limit - 3] + "..."


# --- the exchange ------------------------------------------------------------------------------------


@contextmanager
def _exchange(
    method: bytes,
    target: _Target,
    *,
    policy: FetchPolicy,
    deadline: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Iterator[httpcore.Response]:
    sent = [
        (b"Host", target.host_header),
        (b"User-Agent", USER_AGENT.encode()),
        (b"Accept-Encoding", b"identity"),
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    remaining = max(0.001, deadline - time.monotonic())
    timeouts = {"connect": remaining, "read": remaining, "write": remaining, "pool": remaining}
    backend = _PinnedBackend(target.addresses, deadline)
    try:
        with (
            httpcore.ConnectionPool(
                ssl_context=_ssl_context(), network_backend=backend, max_connections=1
            ) as pool,
            pool.stream(
                method, target.url, headers=sent, content=body, extensions={"timeout": timeouts}
            ) as response,
        ):
            yield response
    except httpcore.TimeoutException:
        raise FetchError(
            f"URL {target.display} did not answer within {policy.timeout_s:g} s; "
            "make sure the server responds quickly or host the file elsewhere"
        ) from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        raise FetchError(
            f"URL {target.display} could not be fetched ({exc or type(exc).__name__}); "
            "check that the server is up and reachable from Kinema"
        ) from None


def _read_capped(response: httpcore.Response, target: _Target, policy: FetchPolicy, deadline: float) -> bytes:
    declared = _header(response, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(
            f"URL {target.display} is {_size(int(declared))}, more than the {_size(policy.max_bytes)} limit; "
            "send a smaller file"
        )
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_stream():
        total += len(chunk)
        if total > policy.max_bytes:
            raise FetchError(
                f"URL {target.display} sent more than the {_size(policy.max_bytes)} limit; "
                "send a smaller file"
            )
        chunks.append(chunk)
    if time.monotonic() > deadline:  # the last read may have finished just past the deadline
        raise FetchError(
            f"URL {target.display} did not finish within {policy.timeout_s:g} s; host it elsewhere"
        )
    return b"".join(chunks)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _size(n: int) -> str:
    mib = 1024 * 1024
    if n < mib:
        return f"{n} bytes"
    return f"{n // mib} MiB" if n % mib == 0 else f"{n / mib:.1f} MiB"


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the vetted addresses whatever host httpcore asks for, and enforces the deadline."""

    def __init__(self, addresses: tuple[IPAddress, ...], deadline: float) -> None:
        self._addresses = addresses
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        del host  # the vetted address replaces a second DNS lookup (no rebinding between check and connect)
        failure: Exception = httpcore.ConnectError("no address to connect to")
        for address in self._addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, _clip(timeout, self._deadline), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _DeadlineStream(stream, self._deadline)
        raise failure


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read and write waits at most until the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clip(timeout, self._deadline))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clip(timeout, self._deadline))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, _clip(timeout, self._deadline))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._inner.get_extra_info(info)


def _clip(timeout: float | None, deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ReadTimeout("the request's total time is spent")
    return remaining if timeout is None else min(timeout, remaining)
