"""Hostile and broken input on both APIs: always a 4xx with the code KLING_API.md §8 gives, never a 500.

Complements test_kling.py (the common parameter errors): corrupt, oversized and bomb images, formats
other than JPEG/PNG, wrong JSON types for every field of every create body, bodies that are not
objects, odd text, long ids, bad query parameters, malformed tokens and internal URLs. Every test ends
by checking that the server still answers /healthz and accepts a normal create.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import io
import json
import struct
import time
import zlib
from typing import Any

import jwt
import numpy as np
import pytest
from apikit import Api, Keys, auth, png_b64, token
from PIL import Image
from pydantic import BaseModel

from kinema.api.kling import ExtendCreate, Image2VideoCreate, ImageCreate, Text2VideoCreate
from kinema.api.tasks import TaskCreate
from kinema.net.fetch import FetchPolicy

T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
EXTEND = "/v1/videos/video-extend"
IMAGES = "/v1/images/generations"
TASKS = "/api/v1/tasks"
KLING_LISTS = (T2V, I2V, EXTEND, IMAGES)
INTERNAL = "does not fetch internal addresses"


def refused(response: Any, status: int, code: int, needle: str = "") -> str:
    """Assert a Kling error envelope with this status and code (and `needle` in the message)."""
    body = response.json()
    assert set(body) == {"code", "message", "request_id"}, body
    assert (response.status_code, body["code"]) == (status, code), body
    assert needle.lower() in body["message"].lower(), body["message"]
    message: str = body["message"]
    return message


def still_serving(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    created = api.client.post(T2V, json={"prompt": "a calm lake"}, headers=auth())
    assert created.status_code == 200 and created.json()["data"]["task_status"] == "submitted", created.text


def queued(api: Api) -> int:
    return api.store.counts_by_status().get("submitted", 0)


# --- images -----------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_file(width: int, height: int, idat: bytes, *, depth: int = 8, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(fmt: str, width: int = 640, height: int = 360, **options: Any) -> bytes:
    pixels = (np.random.default_rng(0).random((height, width, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@functools.cache
def bomb() -> str:
    """A real 30000×30000 1-bit PNG of zeros: 900 million pixels in about 150 kB of base64."""
    rows = zlib.compressobj(9)
    row = b"\x00" * (30000 // 8 + 1)  # filter byte + 3750 bytes of pixels
    idat = b"".join(rows.compress(row) for _ in range(30000)) + rows.flush()
    return b64(png_file(30000, 30000, idat, depth=1, colour=0))


def flipped(data: bytes, start: int) -> bytes:
    damaged = bytearray(data)
    for i in range(start, len(data), max(1, (len(data) - start) // 40)):
        damaged[i] ^= 0xFF
    return bytes(damaged)


def corrupt_images() -> dict[str, bytes]:
    good_png, good_jpeg = encoded("PNG"), encoded("JPEG")
    scan = good_jpeg.index(b"\xff\xda")
    components = bytearray(good_jpeg)
    components[good_jpeg.index(b"\xff\xc0") + 9] = 7  # a frame header claiming 7 colour components
    return {
        "png-signature-only": good_png[:8],
        "png-first-half": good_png[: len(good_png) // 2],
        "png-without-iend": good_png[:-12],
        "png-idat-fails-crc": flipped(good_png, 60),
        "png-idat-not-zlib": png_file(640, 360, b"\x78\x9c" + bytes(range(256)) * 2),
        "png-idat-too-short": png_file(640, 360, zlib.compress(b"\x00" * 1000)),
        "png-bit-depth-7": png_file(640, 360, zlib.compress(b"\x00" * 1921 * 360), depth=7),
        "png-bad-filter-type": png_file(640, 360, zlib.compress(b"\x09" * 1921 * 360)),
        "jpeg-magic-only": good_jpeg[:3],
        "jpeg-first-half": good_jpeg[: len(good_jpeg) // 2],
        "jpeg-header-only": good_jpeg[:scan],
        "jpeg-damaged-header": flipped(good_jpeg[:scan], 20) + good_jpeg[scan:],
        "jpeg-seven-components": bytes(components),
    }


CORRUPT = corrupt_images()


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_corrupt_and_truncated_images_are_1201(api: Api, name: str) -> None:
    for field in ("image", "image_tail"):
        response = api.client.post(I2V, json={field: b64(CORRUPT[name])}, headers=auth())
        message = refused(response, 400, 1201, f"{field}:")
        assert "corrupt or truncated" in message, message
    assert queued(api) == 0
    still_serving(api)


def test_a_decompression_bomb_is_refused_from_its_header(api: Api) -> None:
    body = {"image": bomb()}
    assert len(body["image"]) < 200_000
    started = time.perf_counter()
    response = api.client.post(I2V, json=body, headers=auth())
    elapsed = time.perf_counter() - started
    refused(response, 400, 1201, "30000×30000 is 900,000,000 pixels")
    assert elapsed < 2.0, f"the bomb took {elapsed:.2f} s to refuse; it must not be decoded"
    jpeg = bytearray(encoded("JPEG"))
    struct.pack_into(">HH", jpeg, jpeg.index(b"\xff\xc0") + 5, 65535, 65535)  # SOF claims 65535×65535
    refused(api.client.post(I2V, json={"image": b64(bytes(jpeg))}, headers=auth()), 400, 1201, "pixel limit")
    still_serving(api)


def test_images_over_10_mib_are_refused(api: Api) -> None:
    stored = zlib.compress((b"\x00" + b"\x80" * 6000) * 1800, level=0)  # 2000×1800 RGB, not compressed
    big = png_file(2000, 1800, stored)
    assert len(big) > 10 * 1024 * 1024
    refused(api.client.post(I2V, json={"image": b64(big)}, headers=auth()), 400, 1201, "10 MiB")
    huge = "A" * (30 * 1024 * 1024)  # far past twice the limit: refused before anything is decoded
    refused(api.client.post(I2V, json={"image": huge}, headers=auth()), 400, 1201, "10 MiB")
    kinema = {"kind": "image2video", "model": "fake", "image": b64(big)}
    refused(api.client.post(TASKS, json=kinema, headers=auth()), 400, 1201, "10 MiB")
    assert queued(api) == 0
    still_serving(api)


@pytest.mark.parametrize(
    ("fmt", "name", "options"),
    [
        ("GIF", "GIF", {}),
        ("WEBP", "WebP", {"quality": 80}),
        ("BMP", "BMP", {}),
        ("TIFF", "TIFF", {}),
    ],
)
def test_other_formats_are_refused_by_name(api: Api, fmt: str, name: str, options: dict[str, Any]) -> None:
    data = encoded(fmt, **options)
    message = refused(api.client.post(I2V, json={"image": b64(data)}, headers=auth()), 400, 1201, name)
    assert "not JPEG or PNG" in message
    still_serving(api)


NOT_BASE64 = "File is not in a valid base64 format"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("DATA:IMAGE/PNG;BASE64," + png_b64(), NOT_BASE64),
        ("  data:image/png;base64," + png_b64(), NOT_BASE64),
        ("data:image/jpeg;base64," + b64(encoded("JPEG")), NOT_BASE64),
        (png_b64().replace("+", "-").replace("/", "_"), NOT_BASE64),  # the URL-safe alphabet
        (png_b64()[:100] + "=" + png_b64()[100:], NOT_BASE64),  # padding in the middle
        (png_b64()[:-1], NOT_BASE64),  # padding cut short
        ("   ", "the value is empty"),
    ],
    ids=["data-uri-upper", "data-uri-spaces", "data-uri-jpeg", "urlsafe", "mid-padding", "short", "blank"],
)
def test_not_raw_base64_is_1201(api: Api, value: str, needle: str) -> None:
    for field in ("image", "image_tail"):
        body = {"image": png_b64(), field: value}
        refused(api.client.post(I2V, json=body, headers=auth()), 400, 1201, f"{field}: {needle}")
    still_serving(api)


# --- wrong JSON types ----------------------------------------------------------------------------------

STRING = [5, 1.5, True, [], {}, ["x"]]
NUMBER = ["high", [], {}, [0.5]]
INTEGER = ["three", 1.5, [], {}, [1]]
OBJECT = ["simple", 5, [], True]
LIST = ["abc", 5, {"a": 1}]
NOT_NULL = [None]

# Each create body: a valid base, then every field with the values of a wrong JSON type. Numeric strings
# ("3" for n) and booleans for numbers are coerced by pydantic's lax mode and so are not listed here.
CREATE_FIELDS: dict[str, tuple[dict[str, Any], dict[str, list[Any]]]] = {
    T2V: (
        {"prompt": "x"},
        {
            "model_name": STRING, "model": STRING, "prompt": STRING + NOT_NULL, "negative_prompt": STRING,
            "cfg_scale": NUMBER, "mode": STRING + NOT_NULL, "aspect_ratio": STRING + NOT_NULL,
            "duration": [[5], {"s": 5}, True, 5.5, "five", None], "camera_control": OBJECT,
            "callback_url": STRING, "external_task_id": STRING,
        },
    ),
    I2V: (
        {"image": png_b64()},
        {
            "image": STRING, "image_tail": STRING, "static_mask": STRING, "dynamic_masks": LIST,
            "model_name": STRING, "model": STRING, "prompt": STRING + NOT_NULL, "negative_prompt": STRING,
            "cfg_scale": NUMBER, "mode": STRING, "aspect_ratio": STRING, "duration": [[5], "five"],
            "camera_control": OBJECT, "callback_url": STRING, "external_task_id": STRING,
        },
    ),
    EXTEND: (
        {"video_id": "1-0"},
        {
            "video_id": STRING + NOT_NULL, "model_name": STRING, "model": STRING, "prompt": STRING,
            "negative_prompt": STRING, "cfg_scale": NUMBER, "callback_url": STRING,
            "external_task_id": STRING,
        },
    ),
    IMAGES: (
        {"prompt": "x"},
        {
            "model_name": STRING, "model": STRING, "prompt": STRING + NOT_NULL, "negative_prompt": STRING,
            "n": INTEGER + NOT_NULL, "aspect_ratio": STRING + NOT_NULL, "image": STRING, "cfg_scale": NUMBER,
            "callback_url": STRING, "external_task_id": STRING,
        },
    ),
    TASKS: (
        {"kind": "text2video", "model": "fake", "prompt": "x"},
        {
            "kind": STRING + NOT_NULL, "model": STRING + NOT_NULL, "prompt": STRING + NOT_NULL,
            "negative_prompt": STRING, "mode": STRING, "aspect_ratio": STRING, "duration": NUMBER,
            "seconds": NUMBER, "n": INTEGER, "seed": INTEGER, "num_inference_steps": INTEGER,
            "guidance_scale": NUMBER, "image": STRING, "image_tail": STRING, "video_id": STRING,
            "callback_url": STRING, "external_task_id": STRING,
        },
    ),
}  # fmt: skip
BODY_MODELS: dict[str, type[BaseModel]] = {
    T2V: Text2VideoCreate, I2V: Image2VideoCreate, EXTEND: ExtendCreate, IMAGES: ImageCreate,
    TASKS: TaskCreate,
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(CREATE_FIELDS))
def test_every_field_of_the_wrong_json_type_is_1201_naming_it(api: Api, path: str) -> None:
    base, fields = CREATE_FIELDS[path]
    assert set(fields) == set(BODY_MODELS[path].model_fields), "a field of the body is not tried here"
    tried = 0
    for field, values in fields.items():
        for value in values:
            response = api.client.post(path, json={**base, field: value}, headers=auth())
            message = refused(response, 400, 1201)
            assert message.startswith(field), (field, value, message)
            tried += 1
    assert tried >= 3 * len(fields)
    assert queued(api) == 0
    still_serving(api)


def test_nested_camera_control_types_are_1201(api: Api) -> None:
    for config in ({"zoom": "wide"}, {"zoom": [1]}, "zoom", [{"zoom": 1}]):
        body = {"prompt": "x", "camera_control": {"type": "simple", "config": config}}
        refused(api.client.post(T2V, json=body, headers=auth()), 400, 1201, "camera_control")
    still_serving(api)


@pytest.mark.parametrize("path", [T2V, I2V, EXTEND, IMAGES, TASKS])
def test_bodies_that_are_not_json_objects_are_1200(api: Api, path: str) -> None:
    json_type = {**auth(), "Content-Type": "application/json"}
    for content in (
        b"null",
        b"[]",
        b'"prompt"',
        b"42",
        b"true",
        b"",
        b"{",
        b'{"prompt": "x",}',
        b"\xff\xfe{}",
    ):
        refused(api.client.post(path, content=content, headers=json_type), 400, 1200)
    for content_type in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ):
        headers = {**auth(), "Content-Type": content_type}
        refused(api.client.post(path, content=b'{"prompt": "x"}', headers=headers), 400, 1200)
    refused(api.client.post(path, headers=auth()), 400, 1200)  # no body at all
    still_serving(api)


def test_a_huge_body_is_1201(api: Api) -> None:
    body = {"prompt": "x" * (20 * 1024 * 1024), "negative_prompt": "y"}
    refused(api.client.post(T2V, json=body, headers=auth()), 400, 1201, "prompt")
    padding = {"prompt": "x", **{f"unused_{i}": "z" * 100 for i in range(100_000)}}  # 10 MB of unknown fields
    assert api.client.post(IMAGES, json=padding, headers=auth()).status_code == 200  # ignored, as Kling's are
    refused(api.client.post(TASKS, json={"kind": "text2video", **padding}, headers=auth()), 400, 1201)
    still_serving(api)


def test_numbers_json_cannot_hold_are_refused(api: Api) -> None:
    json_type = {**auth(), "Content-Type": "application/json"}
    for raw in (b'{"prompt": "x", "cfg_scale": NaN}', b'{"prompt": "x", "cfg_scale": Infinity}'):
        refused(api.client.post(T2V, content=raw, headers=json_type), 400, 1201, "cfg_scale")
    digits = b'{"prompt": "x", "n": 1' + b"0" * 5000 + b"}"  # beyond Python's int-from-text limit
    response = api.client.post(IMAGES, content=digits, headers=json_type)
    assert response.status_code == 400 and response.json()["code"] in (1200, 1201), response.text
    nested = b'{"prompt": "x", "camera_control": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = api.client.post(T2V, content=nested, headers=json_type)
    assert response.status_code == 400 and response.json()["code"] in (1200, 1201), response.text
    still_serving(api)


# --- text, ids and query parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "一只猫在月光下跳舞 🐈‍⬛🌙",
        "مرحبا \u202eevil\u202c",
        "tab\tnew\nline\r\n",
        "bell\x07 escape\x1b[31m red\x7f",
        "zero\u200bwidth\ufeff",
        "e\u0301\u0301\u0301 combining",
        "🎬" * 2500,
    ],
    ids=["cjk-emoji", "bidi", "whitespace", "c0-controls", "zero-width", "combining", "2500-emoji"],
)
def test_unicode_and_control_characters_are_kept_verbatim(api: Api, prompt: str) -> None:
    created = api.client.post(
        TASKS, json={"kind": "text2video", "model": "fake", "prompt": prompt}, headers=auth()
    )
    assert created.status_code == 200, created.text
    task = api.client.get(f"{TASKS}/{created.json()['data']['id']}", headers=auth()).json()["data"]
    assert task["params"]["prompt"] == prompt
    still_serving(api)


def test_text_that_cannot_be_stored_is_1201(api: Api) -> None:
    json_type = {**auth(), "Content-Type": "application/json"}
    for path, base in ((T2V, {}), (IMAGES, {}), (TASKS, {"kind": "text2video", "model": "fake"})):
        # A NUL is legal JSON but no SQL text column can hold it (Postgres refuses the statement).
        for field in ("prompt", "negative_prompt", "external_task_id"):
            body = {"prompt": "x", **base, field: "a\x00b"}
            refused(api.client.post(path, json=body, headers=auth()), 400, 1201, f"{field}: contains a NUL")
        # Half a surrogate pair: legal JSON syntax, but no Unicode string.
        lone = json.dumps({"prompt": "x", **base}).replace('"x"', '"\\ud800"').encode()
        refused(api.client.post(path, content=lone, headers=json_type), 400, 1201, "prompt")
    refused(api.client.post(EXTEND, json={"video_id": "1\x00-0"}, headers=auth()), 400, 1201, "video_id")
    refused(api.client.post(T2V, json={"prompt": "🎬" * 2501}, headers=auth()), 400, 1201, "prompt")
    assert queued(api) == 0
    still_serving(api)


def test_nul_in_paths_and_queries_is_1201(api: Api) -> None:
    for path in (
        f"{T2V}/a%00b",
        f"{T2V}?external_task_id=%00",
        f"{TASKS}/%00",
        f"{TASKS}?external_task_id=%00",
    ):
        refused(api.client.get(path, headers=auth()), 400, 1201, "NUL")
    for path in (f"{TASKS}/%00/cancel", f"{TASKS}/%00/retry"):
        refused(api.client.post(path, headers=auth()), 400, 1201, "NUL")
    refused(api.client.delete(f"{TASKS}/%00", headers=auth()), 400, 1201, "NUL")
    refused(api.client.delete("/api/v1/account/keys/%00", headers=auth()), 400, 1201, "NUL")
    refused(api.client.get(f"{TASKS}/%00/events", headers=auth()), 400, 1201, "NUL")
    still_serving(api)


def test_external_task_id_length_limits(api: Api) -> None:
    ok = api.client.post(T2V, json={"prompt": "x", "external_task_id": "e" * 256}, headers=auth())
    assert ok.status_code == 200, ok.text
    for value in ("e" * 257, "e" * 1_000_000, ""):
        body = {"prompt": "x", "external_task_id": value}
        refused(api.client.post(T2V, json=body, headers=auth()), 400, 1201, "external_task_id")
        kinema = {"kind": "text2image", "model": "fake", "prompt": "x", "external_task_id": value}
        refused(api.client.post(TASKS, json=kinema, headers=auth()), 400, 1201, "external_task_id")
    for path in (T2V, TASKS):
        response = api.client.get(path, params={"external_task_id": "e" * 257}, headers=auth())
        refused(response, 400, 1201, "external_task_id")
    refused(api.client.get(f"{T2V}/{'9' * 8000}", headers=auth()), 404, 1203)
    refused(api.client.get(f"{TASKS}/{'9' * 8000}", headers=auth()), 404, 1203)
    still_serving(api)


@pytest.mark.parametrize("path", KLING_LISTS)
def test_bad_page_parameters_are_1201_naming_them(api: Api, path: str) -> None:
    for name, value in [
        ("pageNum", "0"), ("pageNum", "-1"), ("pageNum", "1001"), ("pageNum", "abc"), ("pageNum", "1.5"),
        ("pageNum", ""), ("pageNum", "1e3"), ("pageNum", "9" * 40), ("pageSize", "0"), ("pageSize", "501"),
        ("pageSize", "abc"), ("pageSize", "30.5"),
    ]:  # fmt: skip
        refused(api.client.get(path, params={name: value}, headers=auth()), 400, 1201, name)
    assert (
        api.client.get(path, params={"pageNum": "1000", "pageSize": "500"}, headers=auth()).status_code == 200
    )
    still_serving(api)


@pytest.mark.parametrize("name", ["start_time", "end_time"])
def test_usage_times_past_year_9999_are_1201(api: Api, name: str) -> None:
    response = api.client.get("/api/v1/account/usage", params={name: 253402300800000}, headers=auth())
    refused(response, 400, 1201, name)
    still_serving(api)


def test_bad_kinema_list_and_costs_parameters_are_1201(api: Api) -> None:
    for name, value in [
        ("offset", "-1"), ("offset", "abc"), ("limit", "0"), ("limit", "501"), ("limit", "x"),
        ("kind", "movie"), ("status", "done"),
    ]:  # fmt: skip
        refused(api.client.get(TASKS, params={name: value}, headers=auth()), 400, 1201, name)
    for params in (
        {"start_time": "abc", "end_time": "1"},
        {"start_time": "0", "end_time": "-1"},
        {"start_time": "5", "end_time": "1"},
        {"start_time": "0"},
    ):
        refused(api.client.get("/account/costs", params=params, headers=auth()), 400, 1201)
    still_serving(api)


# --- tokens ----------------------------------------------------------------------------------------------


def part(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(claims: object, header: object = None) -> str:
    """An HS256 JWT with ak_a's real secret, whatever its header and claims hold."""
    head = part(header if header is not None else {"alg": "HS256", "typ": "JWT"})
    body = part(claims)
    mac = hmac.new(Keys().pairs["ak_a"][1].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def bad_tokens() -> dict[str, tuple[str, int]]:
    soon = int(time.time()) + 600
    valid = {"iss": "ak_a", "exp": soon}
    secret = Keys().pairs["ak_a"][1]
    return {
        "two-segments": ("abc.def", 1002),
        "garbage-base64": ("!!!.@@@.###", 1002),
        "empty-segments": ("..", 1002),
        "header-not-json": (f"{part(b'nope')}.{part(valid)}.x", 1002),
        "header-a-list": (f"{part([1])}.{part(valid)}.x", 1002),
        "claims-a-list": (signed([1]), 1002),
        "claims-not-json": (signed(b"{nope"), 1002),
        "hs512": (jwt.encode(valid, secret * 2, algorithm="HS512"), 1002),
        "rs256-header": (f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(valid)}.c2lnbmF0dXJl", 1002),
        "alg-none": (f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(valid)}.", 1002),
        "alg-a-number": (signed(valid, {"alg": 256}), 1002),
        "crit-header": (signed(valid, {"alg": "HS256", "crit": ["exp"]}), 1002),
        "missing-exp": (signed({"iss": "ak_a"}), 1002),
        "iss-a-number": (signed({"iss": 123, "exp": soon}), 1002),
        "iss-a-list": (signed({"iss": ["ak_a"], "exp": soon}), 1002),
        "iss-an-object": (signed({"iss": {"ak": "ak_a"}, "exp": soon}), 1002),
        "iss-null": (signed({"iss": None, "exp": soon}), 1002),
        "iss-with-nul": (signed({"iss": "ak_a\x00", "exp": soon}), 1002),
        "missing-iss": (signed({"exp": soon}), 1002),
        "exp-a-string": (signed({"iss": "ak_a", "exp": "soon"}), 1000),
        "exp-infinite": (signed(b'{"iss": "ak_a", "exp": Infinity}'), 1000),
        "exp-a-list": (signed({"iss": "ak_a", "exp": [soon]}), 1000),
        "nbf-a-string": (signed({"iss": "ak_a", "exp": soon, "nbf": "now"}), 1000),
        "wrong-signature": (signed(valid)[:-4] + "AAAA", 1002),
        "huge": ("a" * 100_000, 1002),
        "four-segments": (token() + ".x", 1002),
    }


BAD_TOKENS = bad_tokens()


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_malformed_tokens_are_401(api: Api, name: str) -> None:
    value, code = BAD_TOKENS[name]
    for method, path in (("GET", T2V), ("POST", T2V), ("GET", TASKS), ("GET", "/account/costs")):
        response = api.client.request(
            method, path, json={"prompt": "x"}, headers={"Authorization": f"Bearer {value}"}
        )
        refused(response, 401, code)
    still_serving(api)


def test_header_bytes_outside_ascii_are_401(api: Api) -> None:
    for raw in ("Bearer é.é.é".encode("latin-1"), b"Bearer \xff\xfe", b"Bearer  \t "):
        response = api.client.get(T2V, headers={b"Authorization": raw})
        assert response.status_code == 401 and response.json()["code"] in (1001, 1002), response.text
    still_serving(api)


# --- server-side requests to internal addresses ---------------------------------------------------------

INTERNAL_URLS = [
    "http://127.0.0.1/x.png",
    "http://127.1.2.3:8080/x.png",
    "http://[::1]/x.png",
    "http://0.0.0.0/x.png",
    "http://[::]/x.png",
    "http://10.1.2.3/x.png",
    "http://172.16.0.1/x.png",
    "http://172.31.255.254/x.png",
    "http://192.168.1.1/x.png",
    "http://100.64.0.1/x.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/x.png",
    "http://[fd00::1]/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "http://[::ffff:7f00:1]/x.png",
    "http://localhost/x.png",
    "http://LOCALHOST.:8000/x.png",
    "http://2130706433/x.png",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/x.png",
    "https://127.0.0.1:443/x.png",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_urls_are_refused_for_images_and_callbacks(api: Api, url: str) -> None:
    refused(api.client.post(I2V, json={"image": url}, headers=auth()), 400, 1201, INTERNAL)
    body = {"image": png_b64(), "image_tail": url}
    refused(api.client.post(I2V, json=body, headers=auth()), 400, 1201, "image_tail:")
    body = {"prompt": "x", "callback_url": url}
    refused(api.client.post(T2V, json=body, headers=auth()), 400, 1201, "callback_url")
    kinema = {"kind": "text2image", "model": "fake", "prompt": "x", "callback_url": url}
    refused(api.client.post(TASKS, json=kinema, headers=auth()), 400, 1201, INTERNAL)
    kinema = {"kind": "image2video", "model": "fake", "image": url}
    refused(api.client.post(TASKS, json=kinema, headers=auth()), 400, 1201, INTERNAL)
    assert queued(api) == 0
    still_serving(api)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pw@example.com/x.png",
        "http://example.com:99999/x.png",
        "http://:80/x.png",
        "ftp://a/x.png",
    ],
)
def test_malformed_urls_are_1201(api: Api, url: str) -> None:
    refused(api.client.post(T2V, json={"prompt": "x", "callback_url": url}, headers=auth()), 400, 1201)
    refused(api.client.post(I2V, json={"image": url}, headers=auth()), 400, 1201)
    still_serving(api)


@pytest.mark.parametrize("field", ["callback_url", "image"])
def test_an_unclosed_ipv6_bracket_is_1201(api: Api, field: str) -> None:
    path, body = (T2V, {"prompt": "x"}) if field == "callback_url" else (I2V, {})
    response = api.client.post(path, json={**body, field: "http://[::1/x.png"}, headers=auth())
    refused(response, 400, 1201, field)
    still_serving(api)


def test_an_empty_dns_label_is_refused_at_once(api: Api) -> None:
    api.ctx.config.fetch_policy = FetchPolicy(timeout_s=0.5)
    response = api.client.post(T2V, json={"prompt": "x", "callback_url": "http://a..b/hook"}, headers=auth())
    message = refused(response, 400, 1201, "callback_url")
    assert "took too long" not in message, message
