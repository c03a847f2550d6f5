"""Durable callbacks: the SQL outbox delivered by senders to a real receiver on loopback.

A callback is recorded with its task's change, so it survives the process: a new sender (another
process, or the same one restarted) delivers what a dead one left, and senders sharing one database
never deliver one callback twice at once. Runs on SQLite, and on Postgres with KINEMA_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from local_server import LocalServer, reply, wait_until

from dbfixtures import SQL_BACKENDS
from kinema.jobs import Callback, OutboxEntry, SqlTaskStore, Task, open_store
from kinema.net.fetch import FetchPolicy
from kinema.net.webhooks import CallbackSender, json_body

LOCAL = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=5.0)
FAST = {"first_delay_s": 0.02, "max_delay_s": 0.05, "give_up_after_s": 5.0, "poll_s": 0.02}
CHILD = Path(__file__).with_name("callback_child.py")
over_sql = pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)


def callbacks(task: Task) -> Callback:
    body = json_body({"task_id": task.task_id, "status": task.status})
    return Callback(url=task.request["callback_url"], body=body, msg_id=f"msg_{task.task_id}_{task.status}")


class Db:
    """Handles on one database, as separate processes would hold them, and senders over them."""

    def __init__(self, url: str, stack: ExitStack) -> None:
        self.url, self.stack = url, stack

    def store(self) -> SqlTaskStore:
        store = open_store(self.url, callbacks=callbacks)
        self.stack.callback(store.close)
        return store

    def sender(self, store: SqlTaskStore, **options: Any) -> CallbackSender:
        sender = CallbackSender(store.outbox, LOCAL, **(FAST | options))
        self.stack.callback(sender.close)
        return sender


@pytest.fixture
def db(sql_url: str) -> Iterator[Db]:
    with ExitStack() as stack:
        yield Db(sql_url, stack)


def accept(store: SqlTaskStore, url: str) -> Task:
    return store.create(account_id="acme", kind="text2video", model="builtin", request={"callback_url": url})


def only_entry(store: SqlTaskStore, task: Task) -> OutboxEntry:
    (entry,) = store.outbox.entries(task.task_id)
    return entry


@over_sql
def test_a_callback_recorded_with_its_change_is_delivered(db: Db, server: LocalServer) -> None:
    server.routes["/hook"] = reply(200)
    store = db.store()
    task = accept(store, server.url("/hook"))
    assert only_entry(store, task).state == "pending"  # recorded by the create itself

    db.sender(store).start()
    wait_until(lambda: store.outbox.pending() == 0)
    entry = only_entry(store, task)
    assert (entry.state, entry.attempts, entry.lease_owner) == ("delivered", 1, None)
    assert server.hits("/hook") == 1
    assert server.seen[0].headers["webhook-id"] == f"msg_{task.task_id}_submitted"


@over_sql
def test_a_500_is_retried_then_delivered(db: Db, server: LocalServer) -> None:
    answers = iter([500, 200])
    server.routes["/flaky"] = lambda handler: reply(next(answers))(handler)
    store = db.store()
    task = accept(store, server.url("/flaky"))

    db.sender(store).start()
    wait_until(lambda: store.outbox.pending() == 0)
    entry = only_entry(store, task)
    assert (entry.state, entry.attempts) == ("delivered", 2)
    assert entry.last_error is not None and "HTTP 500" in entry.last_error
    assert server.hits("/flaky") == 2


@over_sql
def test_a_receiver_that_stays_down_is_given_up_with_its_last_error(db: Db, server: LocalServer) -> None:
    server.routes["/down"] = reply(503)
    store = db.store()
    task = accept(store, server.url("/down"))

    db.sender(store, give_up_after_s=0.3).start()
    wait_until(lambda: store.outbox.pending() == 0)
    entry = only_entry(store, task)
    assert entry.state == "failed" and entry.attempts == server.hits("/down") >= 3
    assert entry.last_error is not None and "HTTP 503" in entry.last_error and "given up" in entry.last_error


@over_sql
def test_a_new_sender_delivers_what_a_stopped_one_left(db: Db, server: LocalServer) -> None:
    server.routes["/hook"] = reply(200)
    accepted = db.store()
    tasks = [accept(accepted, server.url("/hook")) for _ in range(3)]
    accepted.close()  # the process that accepted them is gone before any sender ran

    later = db.store()
    db.sender(later).start()
    wait_until(lambda: later.outbox.pending() == 0)
    assert [only_entry(later, task).state for task in tasks] == ["delivered"] * 3
    assert server.hits("/hook") == 3


@over_sql
def test_a_callback_claimed_by_a_dead_sender_is_delivered_after_its_lease(
    db: Db, server: LocalServer
) -> None:
    server.routes["/hook"] = reply(200)
    store = db.store()
    task = accept(store, server.url("/hook"))
    dead = store.outbox.claim("dead-sender", 0.5)  # claimed, then the sender died without a word
    assert dead is not None

    db.sender(db.store()).start()
    wait_until(lambda: store.outbox.pending() == 0)
    entry = only_entry(store, task)
    assert (entry.state, entry.attempts) == ("delivered", 2)
    assert not store.outbox.delivered(dead.callback_id, "dead-sender")
    assert server.hits("/hook") == 1


@pytest.mark.slow
@over_sql
def test_two_senders_on_one_database_deliver_each_callback_once(db: Db, server: LocalServer) -> None:
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def receive(handler: BaseHTTPRequestHandler) -> None:
        msg_id = handler.headers["webhook-id"]
        with lock:
            seen[msg_id] += 1
            first = seen[msg_id] == 1
        time.sleep(0.002)  # a receiver that takes a moment, so the senders overlap
        reply(500 if first and hash(msg_id) % 3 == 0 else 200)(handler)  # some need a second attempt

    server.routes["/hook"] = receive
    stores = [db.store(), db.store()]
    tasks = [accept(stores[i % 2], server.url("/hook")) for i in range(30)]
    senders = [db.sender(store).start() for store in stores]
    for sender in senders:
        sender.wake()

    wait_until(lambda: stores[0].outbox.pending() == 0, timeout=20.0)
    entries = [only_entry(stores[0], task) for task in tasks]
    assert all(entry.state == "delivered" for entry in entries)
    # Every attempt reached the receiver exactly once: no callback was sent by both senders.
    assert {entry.msg_id: entry.attempts for entry in entries} == dict(seen)


@pytest.mark.slow
@over_sql
def test_kill_9_mid_delivery_then_another_sender_delivers(
    db: Db, server: LocalServer, sql_url: str, tmp_path: Path
) -> None:
    def hang_first(handler: BaseHTTPRequestHandler) -> None:
        if server.hits("/hook") == 1:
            server.release.wait(30)  # the doomed process's POST: it never gets an answer
            handler.close_connection = True
            return
        reply(200)(handler)

    server.routes["/hook"] = hang_first
    with open(tmp_path / "child.log", "w+") as log:
        child = subprocess.Popen(
            [sys.executable, str(CHILD), sql_url, server.url("/hook")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert child.stdout is not None
            task_id = child.stdout.readline().strip()
            assert task_id, (tmp_path / "child.log").read_text()
            wait_until(lambda: server.hits("/hook") == 1, timeout=30.0)  # its sender is mid-POST
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=30)
            for pipe in (child.stdin, child.stdout):
                if pipe is not None:
                    pipe.close()

    store = db.store()
    (orphan,) = store.outbox.entries(task_id)
    assert (orphan.state, orphan.lease_owner, orphan.attempts) == ("pending", "doomed", 1)
    db.sender(store).start()  # claims it once the dead process's 1 s lease has lapsed
    wait_until(lambda: store.outbox.pending() == 0, timeout=10.0)
    (entry,) = store.outbox.entries(task_id)
    assert (entry.state, entry.attempts) == ("delivered", 2)
    ids = [seen.headers["webhook-id"] for seen in server.seen]
    assert ids == [f"msg_{task_id}_submitted"] * 2  # the same id: the receiver can drop a repeat
