"""A Python client for a Kinema server: create tasks, wait with progress, download results.

    from kinema.client import Client

    client = Client("http://127.0.0.1:8000", access_key="ak_...", secret_key="sk_...")
    task = client.text2video("a red circle moving right on a navy background")
    done = client.wait(task["id"], on_progress=lambda t: print(t["progress"], t["stage"]))
    client.download(done["outputs"][0]["url"], "circle.mp4")

It signs a fresh HS256 JWT (KLING_API.md §2) whenever the cached one is older than 25 minutes, or
sends a static API key. Kinema's own endpoints (`/api/v1`) are used for progress, cancel and SSE; the
Kling endpoints are there too (`kling_create`, `kling_task`) for code written against Kling's API.
Needs only httpx and PyJWT: it imports nothing else of Kinema, so it runs in any small environment.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt

TOKEN_SECONDS = 1800
REFRESH_AFTER = 25 * 60
FINISHED = frozenset({"succeed", "failed", "cancelled"})
KLING_PATHS = {
    "text2video": "/v1/videos/text2video",
    "image2video": "/v1/videos/image2video",
    "extend": "/v1/videos/video-extend",
    "text2image": "/v1/images/generations",
}


class KinemaApiError(Exception):
    """The server answered with an error envelope (`code`, `message`) or could not be reached."""

    def __init__(self, status: int, code: int, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class TaskFailed(KinemaApiError):
    """`wait` saw the task end failed or cancelled; `task` is its last state."""

    def __init__(self, task: dict[str, Any]) -> None:
        super().__init__(200, 0, f"task {task.get('id')} {task.get('status')}: {task.get('error')}")
        self.task = task


def image_value(image: str | Path | bytes) -> str:
    """What the API takes for an image: an http(s) URL as is, a file or bytes as raw base64."""
    if isinstance(image, bytes):
        return base64.b64encode(image).decode()
    text = str(image)
    if text.startswith(("http://", "https://")):
        return text
    return base64.b64encode(Path(text).read_bytes()).decode()


class Client:
    def __init__(
        self,
        base_url: str,
        access_key: str | None = None,
        secret_key: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: an httpx.Client to send through instead (its base URL is used as is)."""
        if api_key is None and not (access_key and secret_key):
            raise ValueError("give access_key and secret_key (from `kinema keys create`), or api_key")
        self.access_key, self.secret_key, self.api_key = access_key, secret_key, api_key
        if isinstance(verify, str):  # a CA bundle file, e.g. the server's self-signed certificate
            verify = ssl.create_default_context(cafile=verify)
        self.http = http or httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, verify=verify, transport=transport
        )
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------------------
    def authorization(self) -> str:
        if self.api_key is not None:
            return f"Bearer {self.api_key}"
        with self._lock:
            now = time.time()
            if self._token is None or now - self._token[1] > REFRESH_AFTER:
                claims = {"iss": self.access_key, "exp": int(now) + TOKEN_SECONDS, "nbf": int(now) - 5}
                token = jwt.encode(claims, str(self.secret_key), algorithm="HS256", headers={"typ": "JWT"})
                self._token = (token, now)
            return f"Bearer {self._token[0]}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the envelope's `data`, or raise KinemaApiError."""
        headers = {"Authorization": self.authorization()}
        try:
            response = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise KinemaApiError(0, 5001, f"cannot reach {self.http.base_url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise KinemaApiError(response.status_code, 5000, response.text[:200]) from None
        if response.status_code >= 400 or body.get("code", 0) != 0:
            raise KinemaApiError(
                response.status_code,
                int(body.get("code", 5000)),
                str(body.get("message")),
                body.get("request_id"),
            )
        return body.get("data")

    # --- Kinema's API --------------------------------------------------------------------------------
    def create(self, kind: str, **params: Any) -> dict[str, Any]:
        """Create a task of `kind` (text2video, image2video, extend, text2image) with Kinema's parameters."""
        for field in ("image", "image_tail"):
            if params.get(field) is not None:
                params[field] = image_value(params[field])
        body = {"kind": kind, **{k: v for k, v in params.items() if v is not None}}
        result: dict[str, Any] = self.request("POST", "/api/v1/tasks", json=body)
        return result

    def text2video(self, prompt: str, **params: Any) -> dict[str, Any]:
        return self.create("text2video", prompt=prompt, **params)

    def image2video(
        self,
        image: str | Path | bytes | None = None,
        image_tail: str | Path | bytes | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        return self.create("image2video", image=image, image_tail=image_tail, **params)

    def extend(self, video_id: str, **params: Any) -> dict[str, Any]:
        return self.create("extend", video_id=video_id, **params)

    def image(self, prompt: str, **params: Any) -> dict[str, Any]:
        return self.create("text2image", prompt=prompt, **params)

    def get(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/v1/tasks/{task_id}")
        return result

    def list_tasks(self, **filters: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/api/v1/tasks", params=filters)
        return result

    def cancel(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/tasks/{task_id}/cancel")
        return result

    def retry(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/v1/tasks/{task_id}/retry")
        return result

    def delete(self, task_id: str) -> None:
        self.request("DELETE", f"/api/v1/tasks/{task_id}")

    def models(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/v1/models")["models"]
        return result

    def events(self, task_id: str, *, timeout: float = 600.0) -> Iterator[dict[str, Any]]:
        """The task's Server-Sent Events: each is the task as `get` returns it, until it finishes."""
        headers = {"Authorization": self.authorization(), "Accept": "text/event-stream"}
        with self.http.stream(
            "GET",
            f"/api/v1/tasks/{task_id}/events",
            headers=headers,
            # (connect, read, write, pool): a tuple, which httpx and starlette's TestClient (httpx2 since
            # starlette 1.10) both take; neither takes the other's Timeout object.
            timeout=(timeout, 60.0, timeout, timeout),
        ) as response:
            if response.status_code >= 400:
                body = json.loads(response.read() or b"{}")
                raise KinemaApiError(
                    response.status_code, int(body.get("code", 5000)), str(body.get("message"))
                )
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    payload = json.loads("\n".join(data))
                    data = []
                    if payload:
                        yield payload

    def wait(
        self,
        task_id: str,
        *,
        timeout: float = 600.0,
        poll: float = 0.5,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        raise_on_failure: bool = True,
    ) -> dict[str, Any]:
        """Poll until the task finishes; `on_progress` sees every state. Raises TaskFailed on failure."""
        deadline = time.monotonic() + timeout
        while True:
            task = self.get(task_id)
            if on_progress is not None:
                on_progress(task)
            if task["status"] in FINISHED:
                if raise_on_failure and task["status"] != "succeed":
                    raise TaskFailed(task)
                return task
            if time.monotonic() > deadline:
                raise KinemaApiError(0, 5002, f"task {task_id} did not finish within {timeout:g} s")
            time.sleep(poll)

    def download(self, url: str, target: str | Path) -> Path:
        """Fetch a result link (as given in `outputs[i]["url"]`) into `target`."""
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise KinemaApiError(
                    response.status_code, 1203, f"download failed: {response.read()[:200]!r}"
                )
            with path.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return path

    # --- Kling's API -------------------------------------------------------------------------------
    def kling_create(self, kind: str, **body: Any) -> dict[str, Any]:
        """POST to the Kling endpoint of `kind` with Kling's field names; returns the create `data`."""
        result: dict[str, Any] = self.request("POST", KLING_PATHS[kind], json=body)
        return result

    def kling_task(self, kind: str, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{KLING_PATHS[kind]}/{task_id}")
        return result
