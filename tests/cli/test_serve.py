"""`kinema serve` as a real process with the built-in model: the Kling client flow end to end, and crashes.

A Kling-style client signs a JWT with the admin key pair printed at first start, creates tasks over
real HTTP, polls them to `succeed` and downloads MP4s that decode. Then kill -9: of the server while a
task runs (restart, the task finishes with exactly one output), and of one of two `kinema worker`
processes (the other finishes the task).
"""

from __future__ import annotations

import base64
import gc
import io
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import jwt
import numpy as np
import pytest
from PIL import Image

from kinema.cli.serve import GC_THRESHOLDS, tune_gc
from kinema.world.render import render, sample_scene

KINEMA = Path(sys.executable).with_name("kinema")
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    url: str
    data: Path
    access_key: str
    secret_key: str
    processes: list[subprocess.Popen[str]]

    def headers(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.access_key, "exp": now + 1800, "nbf": now - 5}
        return {"Authorization": "Bearer " + jwt.encode(claims, self.secret_key, algorithm="HS256")}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.post(self.url + path, json=body, headers=self.headers(), timeout=30)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def get(self, path: str) -> dict[str, Any]:
        response = httpx.get(self.url + path, headers=self.headers(), timeout=30)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def poll(
        self, path: str, *, timeout: float = 120, until: tuple[str, ...] = ("succeed", "failed")
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(path)
            status = task.get("task_status", task.get("status"))
            if status in until:
                return task
            assert time.monotonic() < deadline, f"{path} still {status} after {timeout} s"
            for process in self.processes:
                assert process.poll() is None or process.returncode == -9, "a Kinema process died"
            time.sleep(0.2)


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    with log.open("a") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(KINEMA), *args], env=env, stdout=handle, stderr=subprocess.STDOUT, text=True
        )


def wait_ready(url: str, process: subprocess.Popen[str], log: Path, workers: int = 1) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            ready = httpx.get(url + "/readyz", timeout=2).json()
            if ready.get("workers", 0) >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not become ready:\n{log.read_text()}")


def keys_from(log: Path) -> tuple[str, str]:
    text = log.read_text()
    access = text.split("access key", 1)[1].split()[0]
    secret = text.split("secret key", 1)[1].split()[0]
    return access, secret


def env_for(lease_seconds: float = 30.0) -> dict[str, str]:
    return {
        **os.environ,
        "KINEMA_TORCH_THREADS": "1",
        "KINEMA_LEASE_SECONDS": str(lease_seconds),
        "HF_HUB_OFFLINE": "1",
    }


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Running]:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    process = start(["serve", "--port", str(port), "--data-dir", str(data)], log, env_for())
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        yield Running(url, data, *keys_from(log), processes=[process])
    finally:
        process.terminate()
        process.wait(timeout=30)


def decode(data: bytes) -> tuple[str, int, tuple[int, int]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        return stream.codec_context.name, len(frames), frames[0].shape[:2]


def world_png(colour: str = "red", motion: str = "moving right") -> str:
    """A frame of the built-in model's world, upscaled past the API's 300-px minimum, as raw base64."""
    scene = sample_scene(
        np.random.default_rng(5), colour=colour, motion=motion.split()[-1], background="navy"
    )
    frame = render(scene, 1)[0]
    image = Image.fromarray(frame).resize(
        (frame.shape[1] * 12, frame.shape[0] * 12), Image.Resampling.NEAREST
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_kling_client_flow_with_the_builtin_model(server: Running) -> None:
    # text2video: sign, create, poll, download an MP4 that plays.
    created = server.post(
        "/v1/videos/text2video",
        {"model_name": "kling-v1", "prompt": "a red circle moving right on a navy background"},
    )
    assert created["task_status"] == "submitted"
    done = server.poll(f"/v1/videos/text2video/{created['task_id']}")
    assert done["task_status"] == "succeed", done
    video = done["task_result"]["videos"][0]
    codec, frames, (height, width) = decode(httpx.get(video["url"], timeout=30).content)
    assert (codec, frames, video["duration"]) == ("h264", 40, "5.0")
    assert height >= 256 and width > height
    # image2video: the first frame, then first + last.
    first = server.post(
        "/v1/videos/image2video", {"image": world_png(), "prompt": "a red circle moving right"}
    )
    both = server.post(
        "/v1/videos/image2video", {"image": world_png(), "image_tail": world_png("blue"), "duration": "5"}
    )
    for task in (first, both):
        done_i2v = server.poll(f"/v1/videos/image2video/{task['task_id']}")
        assert done_i2v["task_status"] == "succeed", done_i2v
        assert decode(httpx.get(done_i2v["task_result"]["videos"][0]["url"], timeout=30).content)[1] == 40
    # Images.
    image_task = server.post(
        "/v1/images/generations", {"prompt": "a yellow star on a gray background", "n": 2}
    )
    images = server.poll(f"/v1/images/generations/{image_task['task_id']}")["task_result"]["images"]
    assert len(images) == 2 and httpx.get(images[1]["url"], timeout=30).content[:4] == b"\x89PNG"
    # video-extend on the Kling endpoint (+5 s), then Kinema's own extend to a full minute.
    ext = server.post(
        "/v1/videos/video-extend", {"video_id": video["id"], "prompt": "a red circle moving right"}
    )
    ext_done = server.poll(f"/v1/videos/video-extend/{ext['task_id']}")
    assert ext_done["task_status"] == "succeed", ext_done
    assert ext_done["task_info"]["parent_video"]["id"] == video["id"]
    longer = ext_done["task_result"]["videos"][0]
    assert longer["duration"] == "10.0"
    # The Python client on Kinema's own API: extend to a full minute, watching progress, then download.
    from kinema.client import Client

    with Client(server.url, server.access_key, server.secret_key) as client:
        minute = client.extend(longer["id"], seconds=50)
        seen: list[float] = []
        minute_done = client.wait(
            minute["id"], timeout=300, poll=0.2, on_progress=lambda t: seen.append(t["progress"])
        )
        assert seen == sorted(seen) and 0.0 < seen[len(seen) // 2] < 1.0 and seen[-1] == 1.0
        assert minute_done["outputs"][0]["duration"] == 60.0
        path = client.download(minute_done["outputs"][0]["url"], server.data.parent / "minute.mp4")
        assert decode(path.read_bytes())[1] == 480
        assert [m["id"] for m in client.models()] == ["builtin"]


def _media_files(data: Path, task_id: str) -> list[str]:
    return sorted(p.name for p in (data / "media" / "tasks" / task_id).iterdir())


def test_kill_9_the_server_mid_task_then_restart_finishes_it_once(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    args = ["serve", "--port", str(port), "--data-dir", str(data)]
    env = env_for(lease_seconds=3.0)
    url = f"http://127.0.0.1:{port}"
    process = start(args, log, env)
    try:
        wait_ready(url, process, log)
        running = Running(url, data, *keys_from(log), processes=[process])
        task = running.post(
            "/api/v1/tasks", {"kind": "text2video", "prompt": "a cyan star spinning", "duration": 30}
        )
        deadline = time.monotonic() + 60
        while (seen := running.get(f"/api/v1/tasks/{task['id']}"))["progress"] <= 0.05:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert running.get  # the server is gone: start it again on the same data
        process = start(args, log, env)
        running.processes = [process]
        wait_ready(url, process, log)
        done = running.poll(
            f"/api/v1/tasks/{task['id']}", timeout=180, until=("succeed", "failed", "cancelled")
        )
        assert done["status"] == "succeed", done
        assert done["attempt"] == 2
        assert len(done["outputs"]) == 1 and done["outputs"][0]["duration"] == 30.0
        assert [n for n in _media_files(data, task["id"]) if n.startswith("video-")] == [
            "video-0.mp4",
            "video-0.png",
        ]
        assert decode(httpx.get(done["outputs"][0]["url"], timeout=60).content)[1] == 240
    finally:
        process.kill()
        process.wait(timeout=30)


def test_kill_9_one_of_two_workers_the_other_finishes(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    url = f"http://127.0.0.1:{port}"
    env = env_for(lease_seconds=3.0)
    server = start(
        ["serve", "--port", str(port), "--data-dir", str(data), "--workers", "0"], tmp_path / "serve.log", env
    )
    workers: dict[int, subprocess.Popen[str]] = {}
    try:
        wait_ready(url, server, tmp_path / "serve.log", workers=0)
        for i in range(2):
            process = start(["worker", "--data-dir", str(data)], tmp_path / f"worker-{i}.log", env)
            workers[process.pid] = process
        wait_ready(url, server, tmp_path / "serve.log", workers=2)
        running = Running(url, data, *keys_from(tmp_path / "serve.log"), processes=[server])
        task = running.post(
            "/api/v1/tasks", {"kind": "text2video", "prompt": "a purple square falling", "duration": 30}
        )
        deadline = time.monotonic() + 60
        while (seen := running.get(f"/api/v1/tasks/{task['id']}"))["progress"] <= 0.05:
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        with sqlite3.connect(data / "kinema.db") as db:
            (owner,) = db.execute("SELECT lease_owner FROM tasks WHERE task_id = ?", (task["id"],)).fetchone()
        victim = next(pid for pid in workers if f"-{pid}-" in owner)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=10)
        done = running.poll(
            f"/api/v1/tasks/{task['id']}", timeout=180, until=("succeed", "failed", "cancelled")
        )
        assert done["status"] == "succeed" and done["attempt"] == 2, done
        assert len(done["outputs"]) == 1
        with sqlite3.connect(data / "kinema.db") as db:
            (finisher,) = db.execute(
                "SELECT lease_owner FROM tasks WHERE task_id = ?", (task["id"],)
            ).fetchone()
        assert finisher is None or f"-{victim}-" not in finisher
    finally:
        for process in [server, *workers.values()]:
            process.kill()
            process.wait(timeout=30)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_serve_speaks_https_and_links_use_it(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--workers", "0"]
    process = start([*args, "--tls-cert", str(cert), "--tls-key", str(key)], log, env_for())
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trust, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert answer.json() == {"status": "ok"}
        assert f"https://127.0.0.1:{port}" in log.read_text()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    result = subprocess.run(
        [str(KINEMA), "serve", "--tls-cert", str(cert), "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env_for(),
    )  # fmt: skip
    assert result.returncode == 2 and "--tls-cert and --tls-key go together" in result.stderr


def listeners(port: int) -> set[int]:
    """Pids of the processes listening on 127.0.0.1:port (from /proc, Linux)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pids.add(int(entry.name))
    return pids


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux/BSD")
def test_several_http_processes_share_the_port_and_die_with_the_main_one(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--workers", "0"]
    process = start([*args, "--api-processes", "2"], log, env_for())
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log, workers=0)
        deadline = time.monotonic() + 60
        while len(pids := listeners(port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(pids) == 2 and process.pid in pids, (pids, log.read_text()[-2000:])
        access, secret = keys_from(log)
        now = int(time.time())
        token = jwt.encode({"iss": access, "exp": now + 600, "nbf": now - 5}, secret, algorithm="HS256")
        answers = [
            httpx.get(url + "/api/v1/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=30)
            for _ in range(20)  # a new connection each: the kernel spreads them over both processes
        ]
        assert {a.status_code for a in answers} == {200}
        assert log.read_text().count("First start") == 1  # the extra process did no first-start setup
        (child,) = pids - {process.pid}
        process.kill()  # kill -9 of the main process: the extra one notices and stops
        process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_api_processes_out_of_range_is_one_sentence(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(KINEMA), "serve", "--api-processes", "0", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=120, env=env_for(),
    )  # fmt: skip
    assert result.returncode == 2 and "--api-processes must be between 1 and 64" in result.stderr


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_serving_freezes_start_up_objects_and_still_collects_cycles_in_larger_batches() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 1000  # what start-up built: no later collection walks it
        first, second = _Node(), _Node()
        first.other, second.other = second, first  # a cycle: only the collector frees it
        gone = weakref.ref(first)
        del first, second
        assert gone() is not None  # not yet: a young collection waits for 50,000 new objects ...
        kept = [[] for _ in range(GC_THRESHOLDS[0] + 1000)]  # ... which these bring, and no call
        assert gone() is None and len(kept) > GC_THRESHOLDS[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
