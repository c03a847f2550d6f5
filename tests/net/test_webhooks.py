"""Callbacks: Standard Webhooks signatures, and delivery to a real receiver on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler

import pytest
from local_server import LocalServer, reply, wait_until

from kinema.errors import InvalidRequest
from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy
from kinema.net.webhooks import CallbackSender, sign_headers, verify

LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=2.0)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TASK = {"task_id": "123", "task_status": "succeed", "task_status_msg": "", "note": "ünïcode"}


@pytest.fixture
def sender() -> Iterator[CallbackSender]:
    with CallbackSender(LOCAL, first_delay_s=0.02, max_delay_s=0.05, give_up_after_s=2.0) as s:
        yield s


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    body = b'{"test": 2432232314}'
    headers = sign_headers(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    assert verify(SECRET, headers, body, now=1614265330 + 299)


def test_verify_rejects_tampering_wrong_secrets_and_stale_timestamps() -> None:
    body = b'{"a":1}'
    headers = sign_headers(SECRET, "msg_1", 1_700_000_000, body)
    now = 1_700_000_010
    assert not verify(SECRET, headers, b'{"a":2}', now=now)
    assert not verify("whsec_" + "A" * 32, headers, body, now=now)
    assert not verify(SECRET, headers, body, now=1_700_000_000 + 301)
    assert not verify(SECRET, headers, body, now=1_700_000_000 - 301)
    assert not verify(SECRET, {k: v for k, v in headers.items() if k != "webhook-id"}, body, now=now)
    rotated = {k.upper(): v for k, v in headers.items()}
    rotated["WEBHOOK-SIGNATURE"] = "v1,bm90LXRoaXMtb25l " + headers["webhook-signature"]
    assert verify(SECRET, rotated, body, now=now)  # header names any case, several signatures


def test_raw_secrets_work_and_malformed_whsec_secrets_are_refused() -> None:
    headers = sign_headers("plain secret", "msg_1", 100, b"x")
    assert verify("plain secret", headers, b"x", now=100)
    assert not verify("other secret", headers, b"x", now=100)
    with pytest.raises(InvalidRequest, match="not base64"):
        sign_headers("whsec_not*base64", "msg_1", 100, b"x")


def test_delivers_json_with_a_verifiable_signature(server: LocalServer, sender: CallbackSender) -> None:
    server.routes["/hook"] = reply(200)
    sender.send(server.url("/hook"), TASK, secret=SECRET, msg_id="msg_task_123")
    wait_until(lambda: sender.pending() == 0 and server.hits("/hook") == 1)
    seen = server.seen[0]
    assert seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(seen.body.decode("utf-8")) == TASK
    assert seen.headers["webhook-id"] == "msg_task_123"
    assert verify(SECRET, seen.headers, seen.body)


def test_unsigned_deliveries_still_carry_an_id(server: LocalServer, sender: CallbackSender) -> None:
    server.routes["/hook"] = reply(204)
    sender.send(server.url("/hook"), TASK)
    wait_until(lambda: sender.pending() == 0 and server.hits("/hook") == 1)
    assert server.seen[0].headers["webhook-id"].startswith("msg_")
    assert "webhook-signature" not in server.seen[0].headers


def test_retries_after_server_errors_until_success(server: LocalServer, sender: CallbackSender) -> None:
    answers = iter([500, 503, 200])
    server.routes["/flaky"] = lambda handler: reply(next(answers))(handler)
    sender.send(server.url("/flaky"), TASK, secret=SECRET)
    wait_until(lambda: sender.pending() == 0)
    assert server.hits("/flaky") == 3
    ids = {s.headers["webhook-id"] for s in server.seen}
    assert len(ids) == 1  # one message id across attempts, so receivers can drop repeats
    assert all(verify(SECRET, s.headers, s.body) for s in server.seen)


def test_gives_up_after_the_time_budget(server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    server.routes["/down"] = reply(500)
    with CallbackSender(LOCAL, first_delay_s=0.02, max_delay_s=0.05, give_up_after_s=0.3) as sender:
        started = time.monotonic()
        sender.send(server.url("/down"), TASK)
        wait_until(lambda: sender.pending() == 0)
        elapsed = time.monotonic() - started
        attempts = server.hits("/down")
    assert 0.2 < elapsed < 1.0
    assert 3 <= attempts <= 15
    assert "given up" in caplog.text


def test_network_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        calls.append(url)
        if len(calls) < 3:
            raise FetchError(f"URL {url} could not be fetched (connection refused); check the server")
        return 200

    with CallbackSender(LOCAL, first_delay_s=0.01, max_delay_s=0.02, poster=poster) as sender:
        sender.send("http://hooks.test/x", TASK)
        wait_until(lambda: sender.pending() == 0)
    assert len(calls) == 3


def test_internal_targets_are_dropped_not_retried(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/hook"] = reply(200)
    with (
        CallbackSender(FetchPolicy(), first_delay_s=0.01, max_delay_s=0.02) as sender,
        caplog.at_level(logging.WARNING, logger="kinema.net.webhooks"),
    ):
        sender.send(server.url("/hook"), TASK)
        wait_until(lambda: sender.pending() == 0)
    assert server.hits("/hook") == 0
    assert "dropped, not retried" in caplog.text and "loopback" in caplog.text


def test_policy_is_checked_on_every_attempt() -> None:
    policies: list[FetchPolicy] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        policies.append(policy)
        if len(policies) == 1:
            return 500
        raise BlockedURL(f"URL {url} now resolves to a private address (10.0.0.1)")

    with CallbackSender(LOCAL, first_delay_s=0.01, poster=poster) as sender:
        sender.send("http://hooks.test/x", TASK)
        wait_until(lambda: sender.pending() == 0)
    assert policies == [LOCAL, LOCAL]  # the second attempt was vetted again, refused and dropped


def test_redirects_are_not_followed(server: LocalServer) -> None:
    server.routes["/moved"] = reply(302, headers={"Location": "/target"})
    with CallbackSender(LOCAL, first_delay_s=0.02, max_delay_s=0.02, give_up_after_s=0.1) as sender:
        sender.send(server.url("/moved"), TASK)
        wait_until(lambda: sender.pending() == 0)
    assert server.hits("/moved") >= 2 and server.hits("/target") == 0


def test_send_never_blocks_on_a_hanging_receiver(server: LocalServer) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        server.release.wait(5)
        handler.close_connection = True  # hang up without an answer

    server.routes["/hang"] = hang
    with CallbackSender(LOCAL, first_delay_s=0.02) as sender:
        sender.send(server.url("/hang"), TASK)
        wait_until(lambda: server.hits("/hang") == 1)  # the thread is now stuck in that request
        for i in range(20):
            started = time.monotonic()
            sender.send(server.url("/hang"), {**TASK, "i": i})
            assert time.monotonic() - started < 0.5  # the receiver hangs for 5 s
        assert sender.pending() == 21
        server.release.set()
        sender.close(timeout=0.5)


def test_a_full_queue_drops_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    delivered: list[int] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        gate.wait(2)
        delivered.append(json.loads(body)["n"])
        return 200

    with CallbackSender(LOCAL, max_queue=2, poster=poster) as sender:
        sender.send("http://hooks.test/x", {"n": 0})
        wait_until(lambda: sender.pending() == 1 and not sender._queue)  # n=0 is in flight
        for n in (1, 2, 3):
            sender.send("http://hooks.test/x", {"n": n})
        assert sender.pending() == 3
        gate.set()
        wait_until(lambda: sender.pending() == 0)
    assert delivered == [0, 2, 3]
    assert "queue full" in caplog.text


def test_close_stops_the_thread_and_later_sends_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    sender = CallbackSender(LOCAL)
    sender.close(timeout=1.0)
    assert not sender._thread.is_alive()
    sender.send("http://127.0.0.1:9/x", TASK)
    assert sender.pending() == 0
    assert "sender is closed" in caplog.text


def test_malformed_secrets_and_payloads_fail_in_the_caller(sender: CallbackSender) -> None:
    with pytest.raises(InvalidRequest, match="whsec_"):
        sender.send("http://hooks.test/x", TASK, secret="whsec_%%%")
    with pytest.raises(TypeError):
        sender.send("http://hooks.test/x", {"when": object()})
    assert sender.pending() == 0
