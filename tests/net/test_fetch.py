"""SSRF-safe fetching against a real HTTP(S) server on loopback, with a fake resolver for host names."""

from __future__ import annotations

import datetime
import importlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from local_server import LocalServer, reply, tls_server

from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy, address_problem, check_target, fetch, post

fetch_module = importlib.import_module("kinema.net.fetch")  # `kinema.net.fetch` is also the function's name
LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=2.0)


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host names the test maps to addresses; lookups are counted under the key '#<name>'."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in table:
            return real(host, port, *args, **kwargs)
        table.setdefault(f"#{host}", []).append("lookup")
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1/", "a loopback address"),
        ("http://127.8.9.10:8080/x", "a loopback address"),
        ("http://[::1]/", "a loopback address"),
        ("http://10.1.2.3/", "a private address"),
        ("http://172.16.0.1/", "a private address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://[fd00::1]/", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://[ff02::1]/", "a multicast address"),
        ("http://240.0.0.1/", "a reserved address"),
        ("http://255.255.255.255/", "a reserved address"),
        ("http://0.0.0.0/", "an unspecified address"),
        ("http://[::]/", "an unspecified address"),
        ("http://100.64.0.1/", "a shared (carrier-grade NAT) address"),
        ("http://[::ffff:127.0.0.1]/", "a loopback address (127.0.0.1 inside IPv6)"),
        ("http://[::ffff:169.254.169.254]/", "the cloud metadata address"),
        ("http://[2002:a00:1::]/", "a private address (10.0.0.1 inside IPv6)"),
        ("http://[64:ff9b::a9fe:a9fe]/", "the cloud metadata address (169.254.169.254 inside IPv6)"),
        ("https://localhost/", "a loopback address"),
        ("http://2130706433/", "a loopback address"),  # 127.0.0.1 as one decimal number
    ],
)
def test_internal_addresses_are_refused(url: str, problem: str) -> None:
    with pytest.raises(BlockedURL) as caught:
        fetch(url, FetchPolicy(timeout_s=2.0))
    message = str(caught.value)
    assert problem in message
    assert url.split("/")[2] in message and "KINEMA_ALLOW_HOSTS" in message


def test_public_addresses_pass_the_check_without_a_request() -> None:
    assert check_target("https://8.8.8.8/x.png", FetchPolicy()) == [ipaddress.ip_address("8.8.8.8")]
    assert address_problem(ipaddress.ip_address("2606:4700::1111")) is None
    assert address_problem(ipaddress.ip_address("64:ff9b::808:808")) is None  # NAT64 of a public address


def test_a_host_with_any_internal_address_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.test"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(BlockedURL, match=r"mixed\.test/ resolves to a private address \(10\.0\.0\.7\)"):
        check_target("http://mixed.test/", FetchPolicy())


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.png", "file:///etc/passwd", "gopher://example.com/", "example.com/a.png", "//x/a"],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    with pytest.raises(BlockedURL, match="only fetches http"):
        fetch(url, FetchPolicy())


def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(BlockedURL, match="user name or password") as caught:
        fetch("http://user:hunter2@example.com/a.png", FetchPolicy())
    assert "hunter2" not in str(caught.value)


def test_control_characters_are_refused() -> None:
    with pytest.raises(BlockedURL, match="control characters"):
        fetch("http://example.com/a\r\nX-Injected: 1", FetchPolicy())


def test_allow_list_admits_a_local_server(server: LocalServer) -> None:
    server.routes["/a.png"] = reply(200, b"pixels")
    assert fetch(server.url("/a.png"), LOCAL) == b"pixels"
    with pytest.raises(BlockedURL, match="loopback"):
        fetch(server.url("/a.png"), FetchPolicy())


def test_allowed_host_name_keeps_its_host_header(server: LocalServer) -> None:
    server.routes["/a"] = reply(200, b"ok")
    policy = FetchPolicy(allow_hosts=frozenset({"LOCALHOST."}), timeout_s=2.0)  # normalised
    assert fetch(server.url("/a", host="localhost"), policy) == b"ok"
    assert server.seen[-1].headers["Host"] == f"localhost:{server.port}"


def test_connects_to_the_vetted_address_without_a_second_lookup(
    server: LocalServer, fake_dns: dict[str, list[str]]
) -> None:
    server.routes["/a"] = reply(200, b"ok")
    fake_dns["images.test"] = ["127.0.0.1"]
    policy = FetchPolicy(allow_hosts=frozenset({"images.test"}), timeout_s=2.0)
    assert fetch(server.url("/a", host="images.test"), policy) == b"ok"
    assert len(fake_dns["#images.test"]) == 1  # a rebinding DNS server gets no second chance
    assert server.seen[-1].headers["Host"] == f"images.test:{server.port}"


def test_redirects_are_followed_and_each_hop_is_vetted(server: LocalServer) -> None:
    server.routes["/old"] = reply(302, headers={"Location": "/new"})
    server.routes["/new"] = reply(200, b"moved")
    server.routes["/evil"] = reply(301, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    assert fetch(server.url("/old"), LOCAL) == b"moved"
    with pytest.raises(BlockedURL, match="cloud metadata"):
        fetch(server.url("/evil"), LOCAL)


def test_too_many_redirects_are_refused(server: LocalServer) -> None:
    server.routes["/loop"] = reply(307, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="redirected more than 3 times"):
        fetch(server.url("/loop"), LOCAL)
    assert server.hits("/loop") == 4


def test_error_statuses_are_reported(server: LocalServer) -> None:
    with pytest.raises(FetchError, match="answered HTTP 404"):
        fetch(server.url("/missing"), LOCAL)


def test_declared_size_over_the_cap_fails_before_the_body(server: LocalServer) -> None:
    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(50 * 1024 * 1024))
        handler.end_headers()
        server.release.wait(5)

    server.routes["/huge"] = huge
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"is 50 MiB, more than the 10 MiB limit"):
        fetch(server.url("/huge"), LOCAL)
    assert time.monotonic() - started < 1.0


def test_streamed_size_over_the_cap_is_cut_off(server: LocalServer) -> None:
    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")  # no length: the body runs until the socket closes
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b"x" * 4096)

    server.routes["/endless"] = endless
    with pytest.raises(FetchError, match="sent more than the 10000 bytes limit"):
        fetch(server.url("/endless"), FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), max_bytes=10_000))


def test_a_silent_server_times_out(server: LocalServer) -> None:
    server.routes["/slow"] = lambda handler: server.release.wait(5) and None
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"did not answer within 0\.3 s"):
        fetch(server.url("/slow"), FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=0.3))
    assert time.monotonic() - started < 0.8


def test_a_trickling_server_is_cut_off_at_the_total_time(server: LocalServer) -> None:
    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):  # one byte every 50 ms never trips a per-read timeout
            handler.wfile.write(b"x")
            handler.wfile.flush()
            if server.release.wait(0.05):
                return

    server.routes["/trickle"] = trickle
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"within 0\.4 s"):
        fetch(server.url("/trickle"), FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=0.4))
    assert time.monotonic() - started < 0.8


def test_post_returns_the_status_and_does_not_follow_redirects(server: LocalServer) -> None:
    server.routes["/hook"] = reply(302, headers={"Location": "/elsewhere"})
    status = post(server.url("/hook"), b"{}", headers={"Content-Type": "application/json"}, policy=LOCAL)
    assert status == 302
    assert server.hits("/elsewhere") == 0
    assert server.seen[-1].body == b"{}" and server.seen[-1].method == "POST"


def test_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="positive limits"):
        FetchPolicy(timeout_s=0)


# --- TLS: connect to the vetted address, verify the certificate against the host name ---------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for `images.test`; returns (cert, key) PEM paths."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "images.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("images.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def tls(
    certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, fake_dns: dict[str, list[str]]
) -> Iterator[tuple[LocalServer, list[str | None]]]:
    cert, key = certificates
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    sni: list[str | None] = []
    server_side.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment]
    client_side = ssl.create_default_context(cafile=str(cert))
    monkeypatch.setattr(fetch_module, "_ssl_context", lambda: client_side)
    fake_dns["images.test"] = ["127.0.0.1"]
    fake_dns["other.test"] = ["127.0.0.1"]
    yield from ((state, sni) for state in tls_server(server_side))


def test_https_verifies_the_host_name_while_connecting_to_the_vetted_address(
    tls: tuple[LocalServer, list[str | None]],
) -> None:
    server, sni = tls
    server.routes["/a.png"] = reply(200, b"secure")
    policy = FetchPolicy(allow_hosts=frozenset({"images.test", "other.test"}), timeout_s=2.0)
    assert fetch(server.url("/a.png", host="images.test"), policy) == b"secure"
    assert sni == ["images.test"]
    with pytest.raises(FetchError, match="certificate"):
        fetch(server.url("/a.png", host="other.test"), policy)
