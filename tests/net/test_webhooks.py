"""Callbacks: Standard Webhooks signatures, and the sender delivering an outbox to a receiver on loopback.

The outbox here is the in-memory one of `MemoryTaskStore`; the SQL outbox, several senders and kill -9
are in test_durable_callbacks.py.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from local_server import LocalServer, reply, wait_until

from kinema.errors import InvalidRequest
from kinema.jobs import Callback, MemoryTaskStore, OutboxEntry, Task
from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy
from kinema.net.webhooks import CallbackSender, json_body, sign_headers, verify

LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=2.0)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TASK = {"task_id": "123", "task_status": "succeed", "task_status_msg": "", "note": "ünïcode"}


FAST = {"first_delay_s": 0.02, "max_delay_s": 0.05, "give_up_after_s": 2.0, "poll_s": 0.02}


class Hooks:
    """A task store whose tasks call back `url` with TASK (plus `extra`), and senders for its outbox."""

    def __init__(self) -> None:
        self.store = MemoryTaskStore(callbacks=self.callback)
        self.secrets: dict[str, str] = {}

    def callback(self, task: Task) -> Callback:
        body = json_body({**TASK, **task.request.get("extra", {})})
        return Callback(url=task.request["url"], body=body, msg_id=f"msg_{task.task_id}")

    def send(self, url: str, **extra: Any) -> Task:
        return self.store.create(
            account_id="acme", kind="text2video", model="builtin", request={"url": url, "extra": extra}
        )

    def sender(self, policy: FetchPolicy = LOCAL, **options: Any) -> CallbackSender:
        timing = FAST | options
        return CallbackSender(self.store.outbox, policy, secret_of=self.secrets.get, **timing)

    def entry(self, task: Task) -> OutboxEntry:
        (entry,) = self.store.outbox.entries(task.task_id)
        return entry

    def settled(self) -> bool:
        return self.store.outbox.pending() == 0


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


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


def test_delivers_json_with_a_verifiable_signature(server: LocalServer, hooks: Hooks) -> None:
    server.routes["/hook"] = reply(200)
    hooks.secrets["acme"] = SECRET
    task = hooks.send(server.url("/hook"))
    with hooks.sender():
        wait_until(hooks.settled)
    seen = server.seen[0]
    assert server.hits("/hook") == 1 and seen.method == "POST"
    assert seen.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(seen.body.decode("utf-8")) == TASK
    assert seen.headers["webhook-id"] == f"msg_{task.task_id}"
    assert verify(SECRET, seen.headers, seen.body)
    entry = hooks.entry(task)
    assert (entry.state, entry.attempts, entry.last_error) == ("delivered", 1, None)


def test_unsigned_deliveries_still_carry_an_id(server: LocalServer, hooks: Hooks) -> None:
    server.routes["/hook"] = reply(204)
    task = hooks.send(server.url("/hook"))
    with hooks.sender():
        wait_until(hooks.settled)
    assert server.seen[0].headers["webhook-id"] == f"msg_{task.task_id}"
    assert "webhook-signature" not in server.seen[0].headers


def test_retries_after_server_errors_until_success(server: LocalServer, hooks: Hooks) -> None:
    answers = iter([500, 503, 200])
    server.routes["/flaky"] = lambda handler: reply(next(answers))(handler)
    hooks.secrets["acme"] = SECRET
    task = hooks.send(server.url("/flaky"))
    with hooks.sender():
        wait_until(hooks.settled)
    assert server.hits("/flaky") == 3
    assert len({s.headers["webhook-id"] for s in server.seen}) == 1  # one id across attempts
    assert all(verify(SECRET, s.headers, s.body) for s in server.seen)
    entry = hooks.entry(task)
    assert (entry.state, entry.attempts) == ("delivered", 3)
    assert entry.last_error is not None and "HTTP 503" in entry.last_error


def test_gives_up_after_the_time_budget(
    server: LocalServer, hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/down"] = reply(500)
    task = hooks.send(server.url("/down"))
    started = time.monotonic()
    with hooks.sender(give_up_after_s=0.3):
        wait_until(hooks.settled)
    elapsed = time.monotonic() - started
    assert 0.2 < elapsed < 1.5
    assert 3 <= server.hits("/down") <= 15
    entry = hooks.entry(task)
    assert entry.state == "failed" and entry.attempts == server.hits("/down")
    assert entry.last_error is not None and "HTTP 500" in entry.last_error and "given up" in entry.last_error
    assert "given up" in caplog.text


def test_network_errors_are_retried(hooks: Hooks) -> None:
    calls: list[str] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        calls.append(url)
        if len(calls) < 3:
            raise FetchError(f"URL {url} could not be fetched (connection refused); check the server")
        return 200

    task = hooks.send("http://hooks.test/x")
    with hooks.sender(poster=poster):
        wait_until(hooks.settled)
    assert len(calls) == 3 and hooks.entry(task).state == "delivered"


def test_internal_targets_are_given_up_not_retried(
    server: LocalServer, hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/hook"] = reply(200)
    task = hooks.send(server.url("/hook"))
    with (
        hooks.sender(FetchPolicy()),
        caplog.at_level(logging.WARNING, logger="kinema.net.webhooks"),
    ):
        wait_until(hooks.settled)
    assert server.hits("/hook") == 0
    assert "dropped, not retried" in caplog.text and "loopback" in caplog.text
    entry = hooks.entry(task)
    assert entry.state == "failed" and entry.attempts == 1
    assert entry.last_error is not None and "loopback" in entry.last_error


def test_policy_is_checked_on_every_attempt(hooks: Hooks) -> None:
    policies: list[FetchPolicy] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        policies.append(policy)
        if len(policies) == 1:
            return 500
        raise BlockedURL(f"URL {url} now resolves to a private address (10.0.0.1)")

    hooks.send("http://hooks.test/x")
    with hooks.sender(poster=poster):
        wait_until(hooks.settled)
    assert policies == [LOCAL, LOCAL]  # the second attempt was vetted again, refused and given up


def test_redirects_are_not_followed(server: LocalServer, hooks: Hooks) -> None:
    server.routes["/moved"] = reply(302, headers={"Location": "/target"})
    hooks.send(server.url("/moved"))
    with hooks.sender(max_delay_s=0.02, give_up_after_s=0.1):
        wait_until(hooks.settled)
    assert server.hits("/moved") >= 2 and server.hits("/target") == 0


def test_a_hanging_receiver_blocks_no_change_and_close_drops_nothing(
    server: LocalServer, hooks: Hooks
) -> None:
    def hang(handler: BaseHTTPRequestHandler) -> None:
        server.release.wait(5)
        handler.close_connection = True  # hang up without an answer

    server.routes["/hang"] = hang
    sender = hooks.sender().start()
    first = hooks.send(server.url("/hang"))
    wait_until(lambda: server.hits("/hang") == 1)  # the sender is now stuck in that request
    for i in range(20):
        started = time.monotonic()
        hooks.send(server.url("/hang"), i=i)  # a change records its callback; it never waits on one
        assert time.monotonic() - started < 0.5
    sender.close(timeout=0.2)
    assert hooks.store.outbox.pending() == 21  # kept for the next sender, none dropped
    assert hooks.entry(first).lease_owner == sender.owner
    server.release.set()


def test_wake_delivers_at_once_between_polls(server: LocalServer, hooks: Hooks) -> None:
    server.routes["/hook"] = reply(200)
    with hooks.sender(poll_s=30.0) as sender:
        time.sleep(0.05)  # let the thread reach its 30 s wait
        hooks.send(server.url("/hook"))
        sender.wake()
        wait_until(hooks.settled, timeout=2.0)


def test_a_malformed_secret_gives_the_callback_up(hooks: Hooks, caplog: pytest.LogCaptureFixture) -> None:
    hooks.secrets["acme"] = "whsec_%%%"
    task = hooks.send("http://hooks.test/x")
    calls: list[str] = []

    def poster(url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int:
        calls.append(url)
        return 200

    with hooks.sender(poster=poster):
        wait_until(hooks.settled)
    entry = hooks.entry(task)
    assert calls == [] and entry.state == "failed"
    assert entry.last_error is not None and "whsec_" in entry.last_error


def test_bodies_must_be_json() -> None:
    assert json_body({"note": "ünïcode"}) == '{"note":"ünïcode"}'
    with pytest.raises(TypeError):
        json_body({"when": object()})
    with pytest.raises(ValueError):
        json_body({"x": float("nan")})


def test_timing_is_checked() -> None:
    with pytest.raises(ValueError, match="first_delay_s"):
        CallbackSender(MemoryTaskStore().outbox, first_delay_s=0)
    with pytest.raises(ValueError, match="lease_s"):
        CallbackSender(MemoryTaskStore().outbox, lease_s=0)
