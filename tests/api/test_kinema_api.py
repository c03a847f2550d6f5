"""Kinema's own API (/api/v1): every kind, draws, control, SSE, models; plus health, metrics, media links."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from apikit import Api, auth, png_b64

TASKS = "/api/v1/tasks"


def create(api: Api, body: dict[str, object], key: str = "ak_a") -> dict[str, object]:
    response = api.client.post(TASKS, json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def get(api: Api, ident: object) -> dict[str, object]:
    response = api.client.get(f"{TASKS}/{ident}", headers=auth())
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def test_every_kind_with_draws(api: Api) -> None:
    t2v = create(api, {"kind": "text2video", "model": "fake", "prompt": "a green star", "n": 2, "seed": 7})
    i2v = create(api, {"kind": "image2video", "model": "fake", "image": png_b64(), "duration": 5})
    img = create(api, {"kind": "text2image", "model": "fake", "prompt": "a star", "n": 4})
    assert t2v["status"] == "submitted" and t2v["params"]["seed"] == 7  # type: ignore[index]
    assert api.drain() == 3
    done = get(api, t2v["id"])
    assert done["status"] == "succeed" and done["progress"] == 1.0
    outputs = done["outputs"]
    assert [o["seed"] for o in outputs] == [7, 8]  # type: ignore[union-attr,index]
    assert all(api.fetch(o["url"]) and api.fetch(o["poster_url"]) for o in outputs)  # type: ignore[union-attr,index]
    assert get(api, i2v["id"])["status"] == "succeed"
    assert "image_url" in get(api, i2v["id"])["params"]  # type: ignore[operator]
    assert len(get(api, img["id"])["outputs"]) == 4  # type: ignore[arg-type]
    video_id = outputs[0]["id"]  # type: ignore[index]
    ext = create(api, {"kind": "extend", "video_id": video_id, "seconds": 10})
    api.drain()
    extended = get(api, ext["id"])
    assert extended["status"] == "succeed" and extended["outputs"][0]["duration"] == 15.0  # type: ignore[index]
    assert extended["parent_video"]["id"] == video_id  # type: ignore[index]


def test_fields_that_do_not_fit_the_kind_are_refused(api: Api) -> None:
    for body, needle in [
        ({"kind": "text2video", "prompt": "x", "video_id": "1-0"}, "video_id"),
        ({"kind": "text2video", "prompt": "x", "n": 5}, "n"),
        ({"kind": "text2image", "prompt": "x", "duration": 5}, "duration"),
        ({"kind": "extend"}, "video_id"),
        ({"kind": "image2video"}, "image"),
        ({"kind": "text2video", "prompt": "x", "colour": "red"}, "colour"),
        ({"kind": "movie", "prompt": "x"}, "kind"),
        ({"kind": "text2video", "prompt": "x", "num_inference_steps": 0}, "num_inference_steps"),
    ]:
        response = api.client.post(TASKS, json=body, headers=auth())
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == 1201 and needle in response.json()["message"], response.text


def test_list_filters_cancel_retry_delete(api: Api) -> None:
    a = create(api, {"kind": "text2video", "model": "fake", "prompt": "one", "external_task_id": "e1"})
    b = create(api, {"kind": "text2image", "model": "fake", "prompt": "two"})
    cancelled = api.client.post(f"{TASKS}/{a['id']}/cancel", headers=auth()).json()["data"]
    assert cancelled["status"] == "cancelled"
    listing = api.client.get(TASKS, params={"status": "cancelled"}, headers=auth()).json()["data"]
    assert [t["id"] for t in listing["tasks"]] == [a["id"]] and listing["total"] == 1
    listing = api.client.get(TASKS, params={"kind": "text2image"}, headers=auth()).json()["data"]
    assert [t["id"] for t in listing["tasks"]] == [b["id"]]
    found = api.client.get(TASKS, params={"external_task_id": "e1"}, headers=auth()).json()["data"]
    assert [t["id"] for t in found["tasks"]] == [a["id"]]
    again = api.client.post(f"{TASKS}/{a['id']}/retry", headers=auth()).json()["data"]
    assert again["status"] == "submitted"
    assert api.drain() == 2
    done = get(api, a["id"])
    keys = [o["url"] for o in done["outputs"]]  # type: ignore[union-attr]
    assert keys and all(api.fetch(u) for u in keys)
    retry_done = api.client.post(f"{TASKS}/{a['id']}/retry", headers=auth())
    assert retry_done.status_code == 400 and retry_done.json()["code"] == 1201
    assert api.client.delete(f"{TASKS}/{a['id']}", headers=auth()).json()["data"]["deleted"] is True
    assert api.client.get(f"{TASKS}/{a['id']}", headers=auth()).status_code == 404
    assert api.client.get(keys[0]).status_code == 404  # its media went with it
    assert not any(p.is_file() for p in api.storage.root.glob(f"tasks/{a['id']}/*"))


def test_list_filters_by_model_and_creation_time(api: Api) -> None:
    first = create(api, {"kind": "text2video", "model": "fake", "prompt": "one"})
    second = create(api, {"kind": "text2image", "model": "fake", "prompt": "two"})

    def listed(**params: object) -> list[object]:
        response = api.client.get(TASKS, params=params, headers=auth())
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["data"]["tasks"]]

    assert listed(model="fake") == [second["id"], first["id"]]
    assert listed(model=["other", "fake"], kind="text2video") == [first["id"]]
    assert listed(model="other") == []
    created = int(second["created_at"])  # type: ignore[call-overload]
    assert second["id"] in listed(created_after=created) and listed(created_after=created + 1) == []
    assert second["id"] not in listed(created_before=created)
    for params in ({"created_after": -1}, {"created_before": "soon"}, {"model": "m" * 200}):
        bad = api.client.get(TASKS, params=params, headers=auth())
        assert bad.status_code == 400 and bad.json()["code"] == 1201, (params, bad.text)


def test_cancel_a_running_task_stops_it_between_steps(api: Api) -> None:
    task = create(api, {"kind": "text2video", "model": "fake", "prompt": "x"})
    claimed = api.store.claim("other-worker", 30.0)
    assert claimed is not None
    flagged = api.client.post(f"{TASKS}/{task['id']}/cancel", headers=auth()).json()["data"]
    assert flagged["status"] == "processing" and flagged["cancel_requested"] is True
    assert api.store.heartbeat(str(task["id"]), "other-worker", 30.0).should_stop


def test_events_stream_progress_until_done(api: Api) -> None:
    task = create(api, {"kind": "text2video", "model": "fake", "prompt": "x", "duration": 10})
    runner = threading.Timer(0.3, api.drain)
    runner.start()
    events = []
    with api.client.stream("GET", f"{TASKS}/{task['id']}/events", headers=auth()) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    runner.join()
    assert events[0]["status"] == "submitted" and events[-1]["status"] == "succeed"
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_models_lists_published_capabilities(api: Api) -> None:
    models = api.client.get("/api/v1/models", headers=auth()).json()["data"]["models"]
    assert [m["id"] for m in models] == ["fake"]
    assert models[0]["online"] is True and models[0]["capabilities"]["fps"] == 8
    assert api.client.get("/api/v1/models").status_code == 401


def test_health_ready_metrics_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["workers"] == 1
    create(api, {"kind": "text2video", "model": "fake", "prompt": "x"})
    text = api.client.get("/metrics").text
    assert 'kinema_tasks{status="submitted"} 1.0' in text
    assert "kinema_http_requests_total" in text and "kinema_workers_live 1.0" in text
    spec = api.client.get("/openapi.json").json()
    assert "/v1/videos/text2video" in spec["paths"] and "/api/v1/tasks/{task_id}/events" in spec["paths"]


def test_media_links_are_signed_and_expire(api: Api) -> None:
    task = create(api, {"kind": "text2image", "model": "fake", "prompt": "x"})
    api.drain()
    url = str(get(api, task["id"])["outputs"][0]["url"])  # type: ignore[index]
    assert api.client.get(url).status_code == 200
    assert api.client.get(url.replace("signature=", "signature=0")).status_code == 404
    key = url.split("/media/")[1].split("?")[0]
    stale = api.storage.url(key, expires_in=-10)
    assert api.client.get(stale).status_code == 404
    assert api.client.get("/media/../secret.key?expires=9999999999&signature=x").status_code == 404


def test_the_api_does_not_import_torch() -> None:
    code = (
        "import sys, kinema.api.app, kinema.cli.serve, kinema.client; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
