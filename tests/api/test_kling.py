"""The Kling wire contract (shared/KLING_API.md): create, query, list, extend, images, errors, scoping."""

from __future__ import annotations

import io
import time

import av
import pytest
from apikit import Api, auth, png_b64, token

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
EXTEND = "/v1/videos/video-extend"
IMAGES = "/v1/images/generations"


def create(api: Api, path: str, body: dict[str, object], key: str = "ak_a") -> dict[str, object]:
    response = api.client.post(path, json=body, headers=auth(key))
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert envelope["code"] == 0 and envelope["message"] == "SUCCEED" and envelope["request_id"]
    data: dict[str, object] = envelope["data"]
    return data


def query(api: Api, path: str, ident: str, key: str = "ak_a") -> dict[str, object]:
    response = api.client.get(f"{path}/{ident}", headers=auth(key))
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def error(response: object) -> tuple[int, int, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert "data" not in body
    return response.status_code, body["code"], body["message"]  # type: ignore[attr-defined]


def video_frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_text2video_create_poll_download(api: Api) -> None:
    before = int(time.time() * 1000)
    created = create(api, T2V, {"prompt": "a red circle moving right", "external_task_id": "order-1"})
    assert created["task_status"] == "submitted"
    assert str(created["task_id"]).isdigit()
    assert created["task_info"] == {"external_task_id": "order-1"}
    assert isinstance(created["created_at"], int) and created["created_at"] >= before - 1000
    task = query(api, T2V, str(created["task_id"]))
    assert task["task_status"] == "submitted" and task["task_result"] == {"videos": []}
    assert api.drain() == 1
    task = query(api, T2V, "order-1")  # the external id works in the path too
    assert task["task_status"] == "succeed" and task["task_status_msg"] == ""
    (video,) = task["task_result"]["videos"]  # type: ignore[index]
    assert video["duration"] == "5.0" and isinstance(video["id"], str)
    assert video_frames(api.fetch(video["url"])) == 40
    by_param = api.client.get(T2V, params={"external_task_id": "order-1"}, headers=auth()).json()["data"]
    assert by_param["task_id"] == created["task_id"]


def test_list_is_per_family_newest_first_and_paged(api: Api) -> None:
    ids = [create(api, T2V, {"prompt": f"clip {i}"})["task_id"] for i in range(3)]
    create(api, IMAGES, {"prompt": "a still"})
    page = api.client.get(T2V, params={"pageNum": 1, "pageSize": 2}, headers=auth()).json()["data"]
    assert [t["task_id"] for t in page] == ids[::-1][:2]
    rest = api.client.get(T2V, params={"pageNum": 2, "pageSize": 2}, headers=auth()).json()["data"]
    assert [t["task_id"] for t in rest] == [ids[0]]
    bad = api.client.get(T2V, params={"pageSize": 501}, headers=auth())
    assert error(bad)[:2] == (400, 1201)


def test_duration_mode_and_cfg_reach_the_request(api: Api) -> None:
    created = create(
        api, T2V, {"prompt": "x", "duration": 10, "mode": "pro", "cfg_scale": 1.0, "aspect_ratio": "1:1"}
    )
    task = api.store.get(str(created["task_id"]), "acc_a")
    assert task is not None
    spec = task.request["spec"]
    assert spec["duration"] == 10.0 and spec["mode"] == "pro" and spec["aspect_ratio"] == "1:1"
    assert spec["guidance_scale"] == 20.0  # cfg 1.0 is the top of the model's guidance range
    assert isinstance(spec["seed"], int)  # drawn at create, so a retried attempt repeats the video
    assert api.drain() == 1
    done = query(api, T2V, str(created["task_id"]))
    assert done["task_result"]["videos"][0]["duration"] == "10.0"  # type: ignore[index]


def test_image2video_first_and_last_frame(api: Api) -> None:
    created = create(
        api, I2V, {"image": png_b64(), "image_tail": png_b64(colour=(240, 240, 240)), "prompt": "go"}
    )
    task = api.store.get(str(created["task_id"]), "acc_a")
    assert task is not None and api.storage.exists(task.request["spec"]["image"])
    assert api.drain() == 1
    done = query(api, I2V, str(created["task_id"]))
    assert done["task_status"] == "succeed", done
    assert video_frames(api.fetch(done["task_result"]["videos"][0]["url"])) == 40  # type: ignore[index]
    # Not listed under text2video, not found there either.
    assert api.client.get(T2V, headers=auth()).json()["data"] == []
    assert error(api.client.get(f"{T2V}/{created['task_id']}", headers=auth()))[:2] == (404, 1203)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"image": "data:image/png;base64," + png_b64()}, "File is not in a valid base64 format"),
        ({"image": "%%%not base64%%%"}, "File is not in a valid base64 format"),
        ({"image": png_b64(200, 200)}, "300"),
        ({"image": png_b64(900, 300)}, "aspect"),
        ({"prompt": "no image"}, "image"),
        ({"image": png_b64(), "static_mask": "abc"}, "static_mask"),
        ({"image": "http://127.0.0.1/secret.png"}, "127.0.0.1"),
        ({"image": "http://169.254.169.254/latest/meta-data"}, "169.254.169.254"),
    ],
)
def test_image2video_bad_images_are_1201(api: Api, body: dict[str, object], needle: str) -> None:
    status, code, message = error(api.client.post(I2V, json=body, headers=auth()))
    assert (status, code) == (400, 1201)
    assert needle.lower() in message.lower(), message
    assert api.store.counts_by_status()["submitted"] == 0


def test_extend_chains_to_a_minute(api: Api) -> None:
    created = create(api, T2V, {"prompt": "a blue square moving up"})
    api.drain()
    video_id = query(api, T2V, str(created["task_id"]))["task_result"]["videos"][0]["id"]  # type: ignore[index]
    durations = []
    for _ in range(11):  # 5 s + 11 x 5 s = 60 s
        ext = create(api, EXTEND, {"video_id": video_id})
        assert api.drain() == 1
        done = query(api, EXTEND, str(ext["task_id"]))
        assert done["task_status"] == "succeed", done
        assert done["task_info"]["parent_video"]["id"] == video_id  # type: ignore[index]
        video = done["task_result"]["videos"][0]  # type: ignore[index]
        video_id = video["id"]
        durations.append(float(video["duration"]))
    assert durations[0] == 10.0 and durations[-1] == 60.0
    assert video_frames(api.fetch(video["url"])) == 480


def test_extend_refuses_past_three_minutes_and_unknown_videos(api: Api) -> None:
    created = create(api, T2V, {"prompt": "x"})
    ident = str(created["task_id"])
    claimed = api.store.claim("test-worker", 30.0)
    assert claimed is not None and claimed.task_id == ident
    long_id = f"{ident}-0"
    output = {
        "id": long_id,
        "index": 0,
        "type": "video",
        "key": f"tasks/{ident}/video-0.mp4",
        "duration": 178.0,
    }
    api.store.complete(ident, "test-worker", [output])
    status, code, message = error(api.client.post(EXTEND, json={"video_id": long_id}, headers=auth()))
    assert (status, code) == (400, 1201) and "180" in message
    assert error(api.client.post(EXTEND, json={"video_id": "123-0"}, headers=auth()))[:2] == (404, 1203)
    # Another account cannot extend a's video.
    assert error(api.client.post(EXTEND, json={"video_id": long_id}, headers=auth("ak_b")))[:2] == (404, 1203)


def test_image_generation_n(api: Api) -> None:
    created = create(api, IMAGES, {"prompt": "a yellow star", "n": 3, "aspect_ratio": "4:3"})
    api.drain()
    done = query(api, IMAGES, str(created["task_id"]))
    images = done["task_result"]["images"]  # type: ignore[index]
    assert [i["index"] for i in images] == [0, 1, 2]
    assert api.fetch(images[0]["url"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert error(api.client.post(IMAGES, json={"prompt": "x", "n": 10}, headers=auth()))[:2] == (400, 1201)


def test_failed_and_cancelled_read_as_failed(api: Api) -> None:
    created = create(api, T2V, {"prompt": "x"})
    api.client.post(f"/api/v1/tasks/{created['task_id']}/cancel", headers=auth())
    task = query(api, T2V, str(created["task_id"]))
    assert (task["task_status"], task["task_status_msg"]) == ("failed", "cancelled")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x" * 2501}, "prompt"),
        ({"prompt": "x", "duration": "7"}, "duration"),
        ({"prompt": "x", "cfg_scale": 1.5}, "cfg_scale"),
        ({"prompt": "x", "cfg_scale": "high"}, "cfg_scale"),
        ({"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "x", "mode": "ultra"}, "mode"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x", "model_name": "no-such-model"}, "model_name"),
        (
            {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 2}}},
            "camera_control",
        ),
        ({"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 11}}}, "zoom"),
        ({"prompt": "x", "callback_url": "ftp://example.com/hook"}, "callback_url"),
        ({"prompt": "x", "callback_url": "http://10.0.0.5/hook"}, "callback_url"),
    ],
)
def test_bad_parameters_are_1201_naming_the_field(api: Api, body: dict[str, object], field: str) -> None:
    status, code, message = error(api.client.post(T2V, json=body, headers=auth()))
    assert (status, code) == (400, 1201), message
    assert field in message, message


def test_camera_control_is_accepted_when_well_formed(api: Api) -> None:
    body = {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 5}}}
    assert create(api, T2V, body)["task_status"] == "submitted"
    assert (
        create(api, T2V, {"prompt": "x", "camera_control": {"type": "down_back"}})["task_status"]
        == "submitted"
    )


def test_body_that_is_not_json_is_1200(api: Api) -> None:
    response = api.client.post(
        T2V, content=b"{not json", headers={**auth(), "Content-Type": "application/json"}
    )
    assert error(response)[:2] == (400, 1200)
    response = api.client.post(T2V, content=b"[1, 2]", headers={**auth(), "Content-Type": "application/json"})
    assert error(response)[:2] == (400, 1200)


def test_duplicate_external_task_id_creates_nothing(api: Api) -> None:
    create(api, T2V, {"prompt": "x", "external_task_id": "dup"})
    status, code, message = error(
        api.client.post(T2V, json={"prompt": "y", "external_task_id": "dup"}, headers=auth())
    )
    assert (status, code) == (400, 1201) and "dup" in message
    assert api.store.counts_by_status()["submitted"] == 1
    # Another account may use the same external id.
    create(api, T2V, {"prompt": "x", "external_task_id": "dup"}, key="ak_b")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, 1001),
        ("", 1001),
        ("Token abc", 1002),
        ("Bearer not.a.jwt", 1002),
        ("Bearer kn_unknown", 1002),
        (f"Bearer {token(secret='wrong' * 8)}", 1002),
        (f"Bearer {token(iss='ak_nobody', secret='x' * 32)}", 1002),
        (f"Bearer {token(nbf=int(time.time()) + 3600)}", 1003),
        (f"Bearer {token(exp=int(time.time()) - 3600)}", 1004),
    ],
)
def test_authentication_errors(api: Api, header: str | None, code: int) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert error(api.client.get(T2V, headers=headers))[:2] == (401, code)


def test_alg_none_is_refused(api: Api) -> None:
    import base64
    import json

    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    forged = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'iss': 'ak_a', 'exp': int(time.time()) + 99})}."
    assert error(api.client.get(T2V, headers={"Authorization": f"Bearer {forged}"}))[:2] == (401, 1002)


def test_static_key_works(api: Api) -> None:
    response = api.client.get(T2V, headers={"Authorization": "Bearer kn_static_a"})
    assert response.status_code == 200 and response.json()["data"] == []


def test_accounts_see_only_their_own_tasks(api: Api) -> None:
    created = create(api, T2V, {"prompt": "secret plan", "external_task_id": "mine"})
    api.drain()
    ident = str(created["task_id"])
    assert error(api.client.get(f"{T2V}/{ident}", headers=auth("ak_b")))[:2] == (404, 1203)
    assert error(api.client.get(f"{T2V}/mine", headers=auth("ak_b")))[:2] == (404, 1203)
    assert api.client.get(T2V, headers=auth("ak_b")).json()["data"] == []
    for path in (f"/api/v1/tasks/{ident}", f"/api/v1/tasks/{ident}/events"):
        assert error(api.client.get(path, headers=auth("ak_b")))[:2] == (404, 1203)
    for path in (f"/api/v1/tasks/{ident}/cancel", f"/api/v1/tasks/{ident}/retry"):
        assert error(api.client.post(path, headers=auth("ak_b")))[:2] == (404, 1203)
    assert error(api.client.delete(f"/api/v1/tasks/{ident}", headers=auth("ak_b")))[:2] == (404, 1203)
    assert api.client.get("/api/v1/tasks", headers=auth("ak_b")).json()["data"]["total"] == 0


def test_account_costs(api: Api) -> None:
    response = api.client.get("/account/costs", params={"start_time": 0, "end_time": 1}, headers=auth())
    assert response.json()["data"]["resource_pack_subscribe_infos"] == []
    assert error(api.client.get("/account/costs", headers=auth()))[:2] == (400, 1201)


def test_unknown_route_and_method(api: Api) -> None:
    assert error(api.client.get("/v1/nothing", headers=auth()))[:2] == (404, 1202)
    assert error(api.client.put(T2V, headers=auth()))[:2] == (404, 1202)


def test_callbacks_are_announced_on_each_status_change(api: Api) -> None:
    create(api, T2V, {"prompt": "x", "callback_url": "https://93.184.216.34/hook"})
    api.drain()
    statuses = [t.status for t in api.notified]
    assert statuses == ["submitted", "processing", "succeed"]
