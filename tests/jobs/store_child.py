"""A separate worker process for the SQL store tests: `python store_child.py MODE URL WORKER_ID`.

Modes (each prints `ready` once set up, then waits for `go` on stdin, so the parent starts all at once):
  open   open (and so migrate) the database after `go`; print the schema revision
  drain  claim and complete tasks until none is left; print the claimed ids as JSON
  hang   claim one task with a 1 s lease and print its id, then hang until killed (no heartbeat)
  hook   create one task with a hook that inserts a row into the test's table `hook_rows`, then prints
         `in-hook TASK_ID` and hangs (inside the transaction, before the commit) until killed
"""

from __future__ import annotations

import json
import sys

from sqlalchemy import Connection, text

from kinema.db import migrate
from kinema.jobs import TaskEvent, open_store


def hang_in_hook(connection: Connection | None, event: TaskEvent) -> None:
    assert connection is not None
    connection.execute(
        text("INSERT INTO hook_rows (task_id, event) VALUES (:task_id, :event)"),
        {"task_id": event.task_id, "event": event.event},
    )
    print(f"in-hook {event.task_id}", flush=True)
    sys.stdin.readline()  # the parent kills this process with SIGKILL before the transaction commits


def main(mode: str, url: str, worker_id: str) -> None:
    store = None if mode == "open" else open_store(url, hook=hang_in_hook if mode == "hook" else None)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go' on stdin")
    if mode == "open":
        store = open_store(url)
        print(migrate.current(store.engine), flush=True)
    elif mode == "drain" and store is not None:
        claimed = []
        while (task := store.claim(worker_id, 60)) is not None:
            claimed.append(task.task_id)
            store.complete(task.task_id, worker_id, [{"video": f"{task.task_id}-{worker_id}.mp4"}])
        print(json.dumps(claimed), flush=True)
    elif mode == "hang" and store is not None:
        task = store.claim(worker_id, 1.0)
        print(task.task_id if task else "none", flush=True)
        sys.stdin.readline()  # the parent kills this process with SIGKILL before it ever writes again
    elif mode == "hook" and store is not None:
        store.create(account_id="acme", kind="text2video", model="builtin", request={"prompt": "doomed"})
        print("committed", flush=True)
    if store is not None:
        store.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
