"""Callbacks as `kinema serve` and `kinema worker` compose them: each change of a task is recorded in the
database's outbox as the task's creator sees it (Kling's object or Kinema's view), and the sender signs
it with the account's webhook secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kinema.cli.services import Services, build_services, callback_sender, notifier
from kinema.jobs import Task
from kinema.net.webhooks import verify
from kinema.settings import Settings

HOOK = "https://hooks.example.com/kinema"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path / "data", allow_hosts=["127.0.0.1"], public_url="http://k.test")
    built = build_services(settings)
    yield built
    built.close()


def accept(services: Services, api: str, url: str = HOOK) -> Task:
    account = services.accounts.ensure_account("acme")
    spec = {"kind": "text2video", "model": "builtin", "prompt": "a red circle"}
    request = {"api": api, "callback_url": url, "spec": spec}
    return services.store.create(
        account_id=account.account_id, kind="text2video", model="builtin", request=request
    )


def bodies(services: Services, task: Task) -> list[dict[str, Any]]:
    return [json.loads(entry.body) for entry in services.store.outbox.entries(task.task_id)]


def test_kling_tasks_call_back_with_kling_task_objects(services: Services) -> None:
    task = accept(services, "kling")
    assert services.store.claim("w1", 30) is not None
    output = {"id": "vid_1", "key": f"tasks/{task.task_id}/video-0.mp4", "duration": 5.0}
    done = services.store.complete(task.task_id, "w1", [output])

    sent = bodies(services, task)
    assert [body["task_status"] for body in sent] == ["submitted", "processing", "succeed"]
    (video,) = sent[-1]["task_result"]["videos"]
    assert video["id"] == "vid_1" and video["url"].startswith("http://k.test/")  # a signed link
    (entry, *_) = services.store.outbox.entries(task.task_id)
    assert entry.url == HOOK and entry.msg_id == f"msg_{task.task_id}_submitted_{sent[0]['created_at']}"
    assert services.store.outbox.entries(done.task_id)[-1].msg_id.startswith(f"msg_{task.task_id}_succeed_")


def test_kinema_tasks_call_back_with_kinemas_view(services: Services) -> None:
    task = accept(services, "kinema")
    services.store.request_cancel(task.task_id, task.account_id)
    assert [(body["status"], body["id"]) for body in bodies(services, task)] == [
        ("submitted", task.task_id),
        ("cancelled", task.task_id),
    ]


def test_the_sender_signs_with_the_accounts_webhook_secret(services: Services) -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        task = accept(services, "kling", f"http://127.0.0.1:{http.server_address[1]}/hook")
        secret = services.accounts.set_webhook_secret(task.account_id)
        sender = callback_sender(services)
        assert sender.deliver_due() == 1
    finally:
        http.shutdown()
        http.server_close()

    ((headers, body),) = received
    assert verify(secret, headers, body) and json.loads(body)["task_id"] == task.task_id
    assert services.store.outbox.pending() == 0


def test_notify_observes_every_change_and_wakes_the_sender_only_for_callbacks(services: Services) -> None:
    class Sender:
        woken = 0

        def wake(self) -> None:
            self.woken += 1

    seen: list[str] = []
    sender = Sender()
    notify = notifier(sender, observe=lambda task: seen.append(task.task_id))
    with_callback = accept(services, "kling")
    without = services.store.create(
        account_id=with_callback.account_id, kind="text2image", model="builtin", request={}
    )
    notify(with_callback)
    notify(without)
    assert seen == [with_callback.task_id, without.task_id] and sender.woken == 1
