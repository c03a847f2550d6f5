"""Image inputs: formats, limits, bombs, corrupt files, orientation and metadata, per KLING_API §5."""

from __future__ import annotations

import base64
import functools
import io
import struct
import time
import warnings
import zlib
from typing import Any

import pytest
from local_server import LocalServer, reply
from PIL import Image, ImageFile

from kinema.errors import InvalidRequest
from kinema.net.fetch import FetchError, FetchPolicy
from kinema.net.images import MAX_IMAGE_BYTES, InputError, InputImage, load_image_input

POLICY = FetchPolicy()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def load(data: bytes | str, **options: Any) -> InputImage:
    value = data if isinstance(data, str) else b64(data)
    return load_image_input(value, field="image", policy=POLICY, **options)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


@functools.cache
def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of width×height black pixels that compresses to a few KB."""
    squeeze = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(squeeze.compress(row) for _ in range(height)) + squeeze.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_png_round_trips_as_rgb_png_without_metadata() -> None:
    source = Image.new("RGB", (400, 320), (10, 200, 30))
    source.putpixel((5, 7), (255, 0, 128))
    meta = {"pnginfo": _text_info(), "icc_profile": b"fake-profile", "dpi": (300, 300)}
    loaded = load(encode(source, "PNG", **meta))
    assert (loaded.width, loaded.height, loaded.source_format) == (400, 320, "PNG")
    png = loaded.png
    assert png_chunks(png) == [b"IHDR", b"IDAT", b"IEND"]
    with Image.open(io.BytesIO(png)) as out:
        assert (
            out.mode == "RGB"
            and out.getpixel((5, 7)) == (255, 0, 128)
            and out.getpixel((0, 0)) == (10, 200, 30)
        )


def _text_info() -> object:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "secret location", zip=True)
    return info


def test_jpeg_is_accepted_and_exif_orientation_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise
    source = Image.new("RGB", (480, 320), (200, 40, 40))
    loaded = load(encode(source, "JPEG", exif=exif.tobytes(), quality=90, comment=b"hello"))
    assert (loaded.width, loaded.height, loaded.source_format) == (320, 480, "JPEG")
    assert png_chunks(loaded.png) == [b"IHDR", b"IDAT", b"IEND"]


def test_cmyk_and_greyscale_jpegs_become_rgb() -> None:
    for source in (Image.new("CMYK", (300, 300), (0, 255, 255, 0)), Image.new("L", (300, 300), 90)):
        loaded = load(encode(source, "JPEG"))
        with Image.open(io.BytesIO(loaded.png)) as out:
            assert out.mode == "RGB"


def test_transparency_is_composited_onto_white() -> None:
    source = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    source.putpixel((1, 1), (0, 0, 255, 255))
    palette = Image.new("P", (300, 300), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    for data in (encode(source, "PNG"), encode(palette, "PNG", transparency=0)):
        with Image.open(io.BytesIO(load(data).png)) as out:
            assert out.getpixel((0, 0)) == (255, 255, 255)
    with Image.open(io.BytesIO(load(encode(source, "PNG")).png)) as out:
        assert out.getpixel((1, 1)) == (0, 0, 255)


def test_sixteen_bit_greyscale_keeps_its_tones() -> None:
    source = Image.new("I;16", (300, 300), 40000)
    with Image.open(io.BytesIO(load(encode(source, "PNG")).png)) as out:
        assert out.getpixel((0, 0)) == (155, 155, 155)


def test_data_uri_prefix_is_refused_with_klings_message() -> None:
    data = b64(encode(Image.new("RGB", (300, 300)), "PNG"))
    with pytest.raises(InputError) as caught:
        load(f"data:image/png;base64,{data}")
    message = str(caught.value)
    assert message.startswith("image: File is not in a valid base64 format") and "data:" in message


@pytest.mark.parametrize("value", ["not base64 at all!", "QUJ", "abc$", "a"])
def test_invalid_base64_is_refused_with_klings_message(value: str) -> None:
    with pytest.raises(InputError, match=r"^image: File is not in a valid base64 format"):
        load(value)


def test_base64_line_breaks_are_accepted() -> None:
    data = b64(encode(Image.new("RGB", (300, 300)), "PNG"))
    wrapped = "\n".join(data[i : i + 76] for i in range(0, len(data), 76))
    assert load(wrapped).width == 300


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "GIF"), ("WEBP", "WebP"), ("BMP", "BMP"), ("TIFF", "TIFF")]
)
def test_other_formats_are_named_and_refused(fmt: str, name: str) -> None:
    with pytest.raises(InputError, match=rf"^image: the file is {name}, not JPEG or PNG"):
        load(encode(Image.new("RGB", (300, 300)), fmt))


def test_unknown_bytes_and_empty_values_are_refused() -> None:
    with pytest.raises(InputError, match="unknown format"):
        load(b"\x00\x01\x02\x03 hello")
    with pytest.raises(InputError, match=r"^image: the value is empty"):
        load("   ")


@pytest.mark.parametrize(("size", "ok"), [((299, 400), False), ((400, 299), False), ((300, 300), True)])
def test_each_side_must_be_at_least_300_px(size: tuple[int, int], ok: bool) -> None:
    data = encode(Image.new("RGB", size), "PNG")
    if ok:
        load(data)
    else:
        with pytest.raises(InputError, match="at least 300 px"):
            load(data)


@pytest.mark.parametrize(("size", "ok"), [((300, 750), True), ((750, 300), True), ((300, 760), False)])
def test_aspect_ratio_is_between_1_to_2_5_and_2_5_to_1(size: tuple[int, int], ok: bool) -> None:
    data = encode(Image.new("RGB", size), "PNG")
    if ok:
        load(data)
    else:
        with pytest.raises(InputError, match=r"aspect ratio 300:760 is outside 1:2\.5 to 2\.5:1"):
            load(data)
        assert load(data, check_aspect=False).height == 760


def test_files_over_10_mib_are_refused_before_decoding() -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match="more than the 10 MiB limit"):
        load(b"\x89PNG\r\n\x1a\n" + bytes(MAX_IMAGE_BYTES))
    with pytest.raises(InputError, match="more than the 10 MiB limit"):
        load_image_input(
            "http://x.test/a.png", field="image", policy=POLICY, fetcher=lambda u, p: bytes(11 << 20)
        )
    assert time.monotonic() - started < 2.0


def test_decompression_bomb_fails_fast() -> None:
    bomb = bomb_png(20000, 20000)
    assert len(bomb) < 200_000
    started = time.monotonic()
    with pytest.raises(InputError, match=r"^image: 20000×20000 is 400,000,000 pixels, more than"):
        load(bomb)
    assert time.monotonic() - started < 0.2


def test_pixel_limit_applies_below_pillows_own_threshold() -> None:
    with pytest.raises(InputError, match=r"more than the 50,000,000-pixel limit"):
        load(bomb_png(9000, 9000))  # 81 MP: Pillow would decode this without a word
    with pytest.raises(InputError, match=r"more than the 100,000-pixel limit"):
        load(bomb_png(400, 400), max_pixels=100_000)


def test_jpeg_frame_header_bomb_fails_fast() -> None:
    data = bytearray(encode(Image.new("RGB", (300, 300)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)
    with pytest.raises(InputError, match="3,600,000,000 pixels"):
        load(bytes(data))


def test_a_lower_pillow_limit_is_respected_without_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    with pytest.raises(InputError, match="100,000-pixel limit"):
        load(encode(Image.new("RGB", (400, 400)), "PNG"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt: str) -> None:
    noise = Image.effect_noise((400, 400), 64).convert("RGB")
    data = encode(noise, fmt)
    for cut in (len(data) // 2, 40, 12):
        with pytest.raises(InputError, match=rf"^image: the {fmt} file is corrupt or truncated"):
            load(data[:cut])


def test_damaged_png_checksum_and_pixel_data_are_refused() -> None:
    data = bytearray(encode(Image.effect_noise((300, 300), 64), "PNG"))
    data[40] ^= 0xFF  # inside IDAT: the checksum no longer matches
    with pytest.raises(InputError, match="fails its checksum"):
        load(bytes(data))
    ihdr = struct.pack(">IIBBBBB", 300, 300, 8, 0, 0, 0, 0)
    garbage = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"not zlib") + chunk(b"IEND", b"")
    with pytest.raises(InputError, match="could not be decoded"):
        load(garbage)


def test_files_that_make_pillow_warn_load_without_warnings() -> None:
    jpeg = encode(Image.new("RGB", (300, 300), (1, 2, 3)), "JPEG")
    mpf = b"MPF\x00" + b"MM\x00*\x00\x00\x00\x08" + b"\xff" * 20  # a malformed multi-picture header
    broken_mpo = jpeg[:2] + b"\xff\xe2" + struct.pack(">H", len(mpf) + 2) + mpf + jpeg[2:]
    png = encode(Image.new("RGB", (300, 300)), "PNG")
    actl = chunk(b"acTL", struct.pack(">II", 0, 0))  # an animation with zero frames
    broken_apng = png[:33] + actl + png[33:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(broken_mpo)
        load(broken_apng)
    assert caught == []


def test_pillow_global_settings_are_left_alone() -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    load(encode(Image.new("RGB", (300, 300)), "PNG"))
    with pytest.raises(InputError):
        load(bomb_png(20000, 20000))
    assert before == (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)


def test_urls_go_through_the_fetcher_with_the_image_size_cap() -> None:
    data = encode(Image.new("RGB", (300, 300)), "PNG")
    asked: list[tuple[str, FetchPolicy]] = []

    def fetcher(url: str, policy: FetchPolicy) -> bytes:
        asked.append((url, policy))
        return data

    big = FetchPolicy(max_bytes=100 << 20)
    loaded = load_image_input(" https://cdn.test/a.png ", field="image_tail", policy=big, fetcher=fetcher)
    assert loaded.width == 300
    assert asked == [("https://cdn.test/a.png", FetchPolicy(max_bytes=MAX_IMAGE_BYTES))]


def test_fetch_errors_become_input_errors_named_after_the_field() -> None:
    with pytest.raises(InputError) as caught:
        load_image_input("http://127.0.0.1/a.png", field="image_tail", policy=POLICY)
    assert str(caught.value).startswith("image_tail: URL http://127.0.0.1/a.png points to a loopback address")

    def failing(url: str, policy: FetchPolicy) -> bytes:
        raise FetchError(f"URL {url} answered HTTP 404; check the link")

    with pytest.raises(InputError, match=r"^image: URL http://x\.test/a answered HTTP 404"):
        load_image_input("http://x.test/a", field="image", policy=POLICY, fetcher=failing)


@pytest.mark.parametrize("value", ["file:///etc/passwd", "ftp://x.test/a.png", "s3://bucket/key"])
def test_other_url_schemes_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="URLs are not accepted; send an http"):
        load(value)


def test_errors_are_invalid_requests() -> None:
    assert issubclass(InputError, InvalidRequest)


def test_an_allowed_url_is_fetched_and_decoded(server: LocalServer) -> None:
    server.routes["/a.jpg"] = reply(
        200, encode(Image.new("RGB", (640, 360)), "JPEG"), {"Content-Type": "image/jpeg"}
    )
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}), timeout_s=2.0)
    loaded = load_image_input(server.url("/a.jpg"), field="image", policy=policy)
    assert (loaded.width, loaded.height, loaded.source_format) == (640, 360, "JPEG")
