"""A server process for the durable-callback tests: `python callback_child.py URL CALLBACK_URL`.

It opens the store with callbacks, starts a sender with a 1 s lease, accepts one task whose callback
goes to CALLBACK_URL, prints its id, and then waits on stdin until the parent kills it with SIGKILL
(the parent's receiver holds the sender's first POST open meanwhile).
"""

from __future__ import annotations

import sys

from kinema.jobs import Callback, Task, open_store
from kinema.net.fetch import FetchPolicy
from kinema.net.webhooks import CallbackSender, json_body


def callbacks(task: Task) -> Callback:
    body = json_body({"task_id": task.task_id, "status": task.status})
    return Callback(url=task.request["callback_url"], body=body, msg_id=f"msg_{task.task_id}_{task.status}")


def main(url: str, callback_url: str) -> None:
    store = open_store(url, callbacks=callbacks)
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=30.0)
    CallbackSender(store.outbox, policy, lease_s=1.0, poll_s=0.05, owner="doomed").start()
    task = store.create(
        account_id="acme", kind="text2video", model="builtin", request={"callback_url": callback_url}
    )
    print(task.task_id, flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main(*sys.argv[1:3])
