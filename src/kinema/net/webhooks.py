"""Task callbacks (KLING_API §7): Standard Webhooks signatures, and the sender that delivers an outbox.

Callbacks are recorded durably elsewhere (the task store's outbox, in the transaction of each status
change); `CallbackSender` claims them from that outbox in one daemon thread, POSTs, and records each
attempt: delivered, due again after an exponential backoff, or given up once the time budget is spent.
Every attempt is vetted against the SSRF policy again, and redirects are not followed. Several senders,
in several processes, may share one outbox: a claim is a lease, so no two send one callback at once.
This module knows nothing about tasks beyond the JSON text it is handed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from kinema.errors import InvalidRequest
from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy, post

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
CONTENT_TYPE = "application/json; charset=utf-8"
USER_AGENT = "Kinema-Webhooks/1"


class Pending(Protocol):
    """One claimed callback, as an outbox hands it out (`kinema.jobs.OutboxEntry` is one)."""

    @property
    def callback_id(self) -> int: ...
    @property
    def account_id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def msg_id(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...


class Outbox(Protocol):
    """Where the sender claims callbacks and records attempts (`kinema.jobs.outbox.Outbox` is one)."""

    def claim(self, owner: str, lease_seconds: float) -> Pending | None: ...
    def delivered(self, callback_id: int, owner: str) -> bool: ...
    def retry_later(self, callback_id: int, owner: str, *, delay_seconds: float, error: str) -> bool: ...
    def give_up(self, callback_id: int, owner: str, *, error: str) -> bool: ...
    def next_due(self) -> datetime | None: ...


class Poster(Protocol):
    """Sends one POST and returns the HTTP status (`kinema.net.fetch.post`, or a fake in tests)."""

    def __call__(self, url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int: ...


def json_body(payload: Mapping[str, Any]) -> str:
    """The callback body for `payload`: compact JSON text, UTF-8 as is (sent as those exact bytes)."""
    return json.dumps(dict(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for one delivery attempt of `body`."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{_signature(_key(secret), msg_id, timestamp, body)}",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float = 300,
    now: float | None = None,
) -> bool:
    """True if `headers` carry a valid v1 signature of `body` made with `secret` within `tolerance_s`."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp", "")
    if not msg_id or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = _signature(_key(secret), msg_id, timestamp, body)
    offered = (part.partition(",") for part in lowered.get("webhook-signature", "").split())
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, _, sig in offered)


def _key(secret: str) -> bytes:
    """The HMAC key: base64-decoded after the `whsec_` prefix, else the secret's UTF-8 bytes."""
    if not secret:
        raise InvalidRequest("the webhook secret is empty; set a secret or send callbacks unsigned")
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "the webhook secret starts with 'whsec_' but the rest is not base64; use 'whsec_' followed by "
            "base64 of random bytes, or a plain secret without the prefix"
        ) from None


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _no_secret(account_id: str) -> str | None:
    del account_id
    return None


def _sender_id() -> str:
    return f"callbacks-{socket.gethostname()[:64]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class CallbackSender:
    """Delivers an outbox's callbacks from one daemon thread; `wake` says that new ones may be due.

    `secret_of(account_id)` gives the account's webhook secret when an attempt is made (None: unsigned).
    A failed attempt is due again after `first_delay_s`, doubling up to `max_delay_s`, until the next
    one would come more than `give_up_after_s` after the callback was recorded: then it is given up,
    its last error kept. A claim lasts `lease_s` (longer than one POST may take); if this process dies
    mid-attempt, another sender claims the callback again once the lease lapses.
    """

    def __init__(
        self,
        outbox: Outbox,
        policy: FetchPolicy | None = None,
        *,
        secret_of: Callable[[str], str | None] = _no_secret,
        first_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        give_up_after_s: float = 15 * 60.0,
        poll_s: float = 1.0,
        lease_s: float | None = None,
        poster: Poster = post,
        owner: str | None = None,
    ) -> None:
        if first_delay_s <= 0 or max_delay_s < first_delay_s or give_up_after_s < 0 or poll_s <= 0:
            raise ValueError(
                "invalid CallbackSender timing: use 0 < first_delay_s <= max_delay_s, give_up_after_s >= 0 "
                "and poll_s > 0"
            )
        self.outbox = outbox
        self.policy = policy or FetchPolicy()
        self.secret_of = secret_of
        self.first_delay_s, self.max_delay_s = first_delay_s, max_delay_s
        self.give_up_after_s, self.poll_s = give_up_after_s, poll_s
        # One POST ends within the policy's timeout (DNS included); the margin covers recording it.
        self.lease_s = lease_s if lease_s is not None else 2 * self.policy.timeout_s + 30.0
        if self.lease_s <= 0:
            raise ValueError(f"lease_s must be positive; got {self.lease_s}")
        self.owner = owner or _sender_id()
        self._poster = poster
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> CallbackSender:
        if self._thread is not None:
            raise RuntimeError("this callback sender was started already; make a new one")
        self._thread = threading.Thread(target=self._run, name="kinema-callbacks", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for due callbacks now rather than at the next poll (call after a change commits)."""
        self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread. Nothing is dropped: what is not delivered stays in the outbox."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> CallbackSender:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deliver_due(self) -> int:
        """Attempt every callback that is due now, one after the other; return how many were attempted."""
        attempted = 0
        while not self._stop.is_set() and (pending := self.outbox.claim(self.owner, self.lease_s)):
            try:
                self._attempt(pending)
            except Exception as exc:  # a bug must not kill the thread that serves every other callback
                logger.exception("callback %s to %s failed unexpectedly", pending.msg_id, pending.url)
                self._failed(pending, f"unexpected error: {exc!r}")
            attempted += 1
        return attempted

    # --- the delivery thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.deliver_due()
                wait = self._idle_wait()
            except Exception:  # the database is unreachable: wait and try again (leases cover the rest)
                logger.exception("the callback sender could not read its outbox; trying again")
                wait = self.poll_s
            self._wake.wait(wait)

    def _idle_wait(self) -> float:
        """Until the next callback is due, at most `poll_s` (other processes add callbacks too)."""
        due = self.outbox.next_due()
        if due is None:
            return self.poll_s
        return min(max((due - datetime.now(UTC)).total_seconds(), 0.0), self.poll_s)

    def _attempt(self, pending: Pending) -> None:
        """POST once and record the outcome; an unexpected error counts as a failed attempt."""
        body = pending.body.encode()
        try:
            headers = self._headers(pending, body)
        except InvalidRequest as exc:  # the account's webhook secret cannot sign: retrying will not help
            logger.warning("callback %s dropped, not retried: %s", pending.msg_id, exc)
            self.outbox.give_up(pending.callback_id, self.owner, error=str(exc))
            return
        try:
            status = self._poster(pending.url, body, headers=headers, policy=self.policy)
        except BlockedURL as exc:
            logger.warning("callback %s dropped, not retried: %s", pending.msg_id, exc)
            self.outbox.give_up(pending.callback_id, self.owner, error=f"blocked: {exc}")
            return
        except FetchError as exc:
            self._failed(pending, str(exc))
            return
        if 200 <= status < 300:
            if not self.outbox.delivered(pending.callback_id, self.owner):
                logger.warning("callback %s delivered after its claim lapsed", pending.msg_id)
            return
        self._failed(pending, f"{pending.url} answered HTTP {status}")

    def _headers(self, pending: Pending, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
        timestamp = int(time.time())
        secret = self.secret_of(pending.account_id)
        if secret is not None:
            return headers | sign_headers(secret, pending.msg_id, timestamp, body)
        # Unsigned deliveries still carry an id, so receivers can drop repeats.
        return headers | {"webhook-id": pending.msg_id, "webhook-timestamp": str(timestamp)}

    def _failed(self, pending: Pending, error: str) -> None:
        """Schedule the next attempt after a backoff, or give up once the time budget would be passed."""
        delay = min(self.max_delay_s, self.first_delay_s * 2 ** min(pending.attempts - 1, 30))
        age = (datetime.now(UTC) - pending.created_at).total_seconds()
        if age + delay > self.give_up_after_s:
            logger.warning(
                "callback %s to %s given up after %d attempts over %.0f s: %s",
                pending.msg_id,
                pending.url,
                pending.attempts,
                age,
                error,
            )
            self.outbox.give_up(
                pending.callback_id, self.owner, error=f"{error} (given up after {pending.attempts} attempts)"
            )
            return
        logger.info("callback %s attempt %d failed: %s", pending.msg_id, pending.attempts, error)
        self.outbox.retry_later(pending.callback_id, self.owner, delay_seconds=delay, error=error)
