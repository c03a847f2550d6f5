"""Task callbacks (KLING_API §7): Standard Webhooks signatures and a sender that never blocks its caller.

`CallbackSender.send` only queues; one daemon thread POSTs, retrying non-2xx answers and network errors
with exponential backoff for a bounded time. Every attempt is vetted against the SSRF policy again, and
redirects are not followed. This module knows nothing about tasks beyond the JSON it is handed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kinema.errors import InvalidRequest
from kinema.net.fetch import BlockedURL, FetchError, FetchPolicy, post

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
CONTENT_TYPE = "application/json; charset=utf-8"
USER_AGENT = "Kinema-Webhooks/1"


class Poster(Protocol):
    """Sends one POST and returns the HTTP status (`kinema.net.fetch.post`, or a fake in tests)."""

    def __call__(self, url: str, body: bytes, *, headers: Mapping[str, str], policy: FetchPolicy) -> int: ...


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


@dataclass
class _Delivery:
    seq: int
    url: str
    body: bytes
    msg_id: str
    secret: str | None
    created: float
    due: float
    attempts: int = 0


class CallbackSender:
    """Queues callbacks and delivers them from one daemon thread; `send` returns at once."""

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        first_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        give_up_after_s: float = 15 * 60.0,
        max_queue: int = 1000,
        poster: Poster = post,
    ) -> None:
        if first_delay_s <= 0 or max_delay_s < first_delay_s or give_up_after_s < 0 or max_queue < 1:
            raise ValueError(
                "invalid CallbackSender timing: use 0 < first_delay_s <= max_delay_s, give_up_after_s >= 0 "
                "and max_queue >= 1"
            )
        self.policy = policy or FetchPolicy()
        self.first_delay_s = first_delay_s
        self.max_delay_s = max_delay_s
        self.give_up_after_s = give_up_after_s
        self.max_queue = max_queue
        self._poster = poster
        self._queue: dict[int, _Delivery] = {}  # by sequence number: the smallest is the oldest
        self._in_flight = 0
        self._seq = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="kinema-callbacks", daemon=True)
        self._thread.start()

    def send(
        self, url: str, payload: Mapping[str, Any], *, secret: str | None = None, msg_id: str | None = None
    ) -> None:
        """Queue `payload` as JSON for `url`; sign it when `secret` is given. Never waits on the network."""
        body = json.dumps(dict(payload), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        if secret is not None:
            _key(secret)  # a malformed secret is the caller's error: say so now, not in a log later
        now = time.monotonic()
        with self._cond:
            if self._closed:
                logger.warning("callback to %s dropped: the sender is closed", url)
                return
            if len(self._queue) >= self.max_queue:
                oldest = self._queue.pop(min(self._queue))
                logger.warning(
                    "callback queue full (%d); dropped the oldest, %s to %s",
                    self.max_queue,
                    oldest.msg_id,
                    oldest.url,
                )
            self._seq += 1
            delivery = _Delivery(self._seq, url, body, msg_id or f"msg_{uuid.uuid4().hex}", secret, now, now)
            self._queue[delivery.seq] = delivery
            self._cond.notify_all()

    def pending(self) -> int:
        """Deliveries queued, waiting for a retry or in flight."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread; deliveries still pending are dropped (and logged)."""
        with self._cond:
            self._closed = True
            if self._queue:
                logger.warning(
                    "callback sender closed with %d deliveries pending; they are dropped", len(self._queue)
                )
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    def __enter__(self) -> CallbackSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the delivery thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while (delivery := self._next_due()) is not None:
            try:
                finished = self._attempt(delivery)
            except Exception:  # a bug must not kill the thread that serves every other callback
                logger.exception(
                    "callback %s to %s failed unexpectedly; dropped", delivery.msg_id, delivery.url
                )
                finished = True
            with self._cond:
                self._in_flight = 0
                if not finished and not self._closed:
                    self._reschedule(delivery)
                self._cond.notify_all()

    def _next_due(self) -> _Delivery | None:
        """Wait for the earliest delivery that is due, take it off the queue and mark it in flight."""
        with self._cond:
            while not self._closed:
                if not self._queue:
                    self._cond.wait()
                    continue
                delivery = min(self._queue.values(), key=lambda d: d.due)
                wait = delivery.due - time.monotonic()
                if wait <= 0:
                    del self._queue[delivery.seq]
                    self._in_flight = 1
                    return delivery
                self._cond.wait(wait)
            return None

    def _attempt(self, delivery: _Delivery) -> bool:
        """POST once; True when the delivery is finished (delivered or refused), False to retry."""
        delivery.attempts += 1
        headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT}
        timestamp = int(time.time())
        if delivery.secret is not None:
            headers |= sign_headers(delivery.secret, delivery.msg_id, timestamp, delivery.body)
        else:  # unsigned deliveries still carry an id, so receivers can drop repeats
            headers |= {"webhook-id": delivery.msg_id, "webhook-timestamp": str(timestamp)}
        try:
            status = self._poster(delivery.url, delivery.body, headers=headers, policy=self.policy)
        except BlockedURL as exc:
            logger.warning("callback %s dropped, not retried: %s", delivery.msg_id, exc)
            return True
        except FetchError as exc:
            logger.info("callback %s attempt %d failed: %s", delivery.msg_id, delivery.attempts, exc)
            return False
        if 200 <= status < 300:
            return True
        logger.info(
            "callback %s attempt %d to %s answered HTTP %d",
            delivery.msg_id,
            delivery.attempts,
            delivery.url,
            status,
        )
        return False

    def _reschedule(self, delivery: _Delivery) -> None:
        delay = min(self.max_delay_s, self.first_delay_s * 2 ** min(delivery.attempts - 1, 30))
        now = time.monotonic()
        if now + delay - delivery.created > self.give_up_after_s:
            logger.warning(
                "callback %s to %s given up after %d attempts over %.0f s",
                delivery.msg_id,
                delivery.url,
                delivery.attempts,
                now - delivery.created,
            )
            return
        delivery.due = now + delay
        self._queue[delivery.seq] = delivery
