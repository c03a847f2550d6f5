"""kinema.client.Client against the app (through the test transport): every method, and its errors."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from apikit import Api, png_b64

from kinema.client import Client, KinemaApiError, TaskFailed


@pytest.fixture
def client(api: Api) -> Client:
    return Client("http://testserver", "ak_a", "sk_a" * 8, http=api.client)  # in-process, no sockets


def test_create_wait_download(api: Api, client: Client, tmp_path: Path) -> None:
    task = client.text2video("a red circle", model="fake", n=2, seed=3)
    runner = threading.Timer(0.2, api.drain)
    runner.start()
    seen: list[str] = []
    done = client.wait(task["id"], poll=0.05, on_progress=lambda t: seen.append(t["status"]))
    runner.join()
    assert seen[0] == "submitted" and seen[-1] == "succeed"
    assert [o["seed"] for o in done["outputs"]] == [3, 4]
    path = client.download(done["outputs"][1]["url"], tmp_path / "b.mp4")
    assert path.stat().st_size > 0
    assert client.list_tasks(kind="text2video")["total"] == 1
    assert [m["id"] for m in client.models()] == ["fake"]


def test_image2video_from_a_file_and_events(api: Api, client: Client, tmp_path: Path) -> None:
    import base64

    image = tmp_path / "first.png"
    image.write_bytes(base64.b64decode(png_b64()))
    task = client.image2video(image, model="fake", prompt="go")
    runner = threading.Timer(0.2, api.drain)
    runner.start()
    events = list(client.events(task["id"]))
    runner.join()
    assert events[0]["status"] == "submitted" and events[-1]["status"] == "succeed"
    extended = client.extend(events[-1]["outputs"][0]["id"], seconds=5)
    assert extended["kind"] == "extend"


def test_cancel_retry_delete_and_failures(api: Api, client: Client) -> None:
    task = client.image("a star", model="fake")
    assert client.cancel(task["id"])["status"] == "cancelled"
    with pytest.raises(TaskFailed) as failed:
        client.wait(task["id"])
    assert failed.value.task["status"] == "cancelled"
    assert client.retry(task["id"])["status"] == "submitted"
    api.drain()
    client.delete(task["id"])
    with pytest.raises(KinemaApiError) as missing:
        client.get(task["id"])
    assert (missing.value.status, missing.value.code) == (404, 1203)


def test_kling_methods_and_bad_keys(api: Api, client: Client) -> None:
    created = client.kling_create("text2video", prompt="x")
    assert client.kling_task("text2video", created["task_id"])["task_status"] == "submitted"
    wrong = Client("http://testserver", "ak_a", "not the secret " * 4, http=api.client)
    with pytest.raises(KinemaApiError) as refused:
        wrong.get("1")
    assert (refused.value.status, refused.value.code) == (401, 1002)
    with pytest.raises(ValueError, match="access_key and secret_key"):
        Client("http://testserver")
