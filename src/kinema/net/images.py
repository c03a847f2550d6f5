"""Image inputs (`image`, `image_tail`) per KLING_API §5: a URL or raw base64 → a clean RGB PNG.

Limits are checked from the file's own header before Pillow decodes a pixel, so a decompression bomb
fails in microseconds. Only the chunks and segments needed to draw the picture are handed to Pillow
(no EXIF, ICC, text or MPO parsing), which keeps its warnings unreachable without touching any of its
global settings. This module knows nothing about tasks, models or HTTP routing.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from kinema.errors import InvalidRequest
from kinema.net.fetch import FetchError, FetchPolicy, fetch

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 50_000_000  # about 8660 × 5770; 150 MB once decoded to RGB
MIN_SIDE = 300
MAX_ASPECT = 2.5

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_PNG_KEPT = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
_JPEG_KEPT_APP = {0xE0, 0xEE}  # APP0 (JFIF) and APP14 (Adobe colour transform) change how pixels decode
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# EXIF orientation → the transpose that shows the picture upright (as ImageOps.exif_transpose does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

Fetcher = Callable[[str, FetchPolicy], bytes]


class InputError(InvalidRequest):
    """An image input that is not a usable JPEG or PNG; the message starts with the field name."""


@dataclass(frozen=True)
class InputImage:
    """An input image re-encoded as an RGB PNG without metadata, upright per its EXIF orientation."""

    png: bytes
    width: int
    height: int
    source_format: Literal["JPEG", "PNG"]


@dataclass(frozen=True)
class _Header:
    format: Literal["JPEG", "PNG"]
    width: int  # as stored, before orientation
    height: int
    orientation: int
    clean: bytes  # the file with only the parts needed to decode pixels


def load_image_input(
    value: str,
    *,
    field: str,
    policy: FetchPolicy,
    fetcher: Fetcher = fetch,
    check_aspect: bool = True,
    max_pixels: int = MAX_PIXELS,
) -> InputImage:
    """Fetch or decode `value` (an http(s) URL or raw base64), check it and return it as a clean PNG."""
    data = _read_value(value, field=field, policy=policy, fetcher=fetcher)
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(
            f"{field}: the image is {_mib(len(data))}, more than the 10 MiB limit; send a smaller file"
        )
    header = _parse_header(data, field=field)
    _check_size(header, field=field, check_aspect=check_aspect, max_pixels=max_pixels)
    return _decode(header, field=field)


def _read_value(value: str, *, field: str, policy: FetchPolicy, fetcher: Fetcher) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{field}: the value is empty; send an http(s) URL or the image as raw base64")
    text = value.strip()
    lowered = text[:8].lower()
    if lowered.startswith(("http://", "https://")):
        try:
            return fetcher(
                text, dataclasses.replace(policy, max_bytes=min(policy.max_bytes, MAX_IMAGE_BYTES))
            )
        except FetchError as exc:
            raise InputError(f"{field}: {exc}") from None
    if lowered.startswith("data:"):
        raise InputError(
            f"{field}: File is not in a valid base64 format; "
            "send raw base64 without the 'data:...;base64,' prefix"
        )
    if _URL_SCHEME.match(text):
        scheme = text.split(":", 1)[0]
        raise InputError(f"{field}: {scheme}: URLs are not accepted; send an http(s) URL or raw base64")
    return _decode_base64(text, field=field)


def _decode_base64(text: str, *, field: str) -> bytes:
    limit = (MAX_IMAGE_BYTES + 2) // 3 * 4
    # Line breaks are legal in base64 (RFC 2045); a value twice the limit is refused before removing them.
    compact = text if len(text) > 2 * limit else "".join(text.split())
    if len(compact) > limit:
        raise InputError(
            f"{field}: the base64 data decodes to about {_mib(len(compact) * 3 // 4)}, more than the "
            "10 MiB limit; send a smaller file"
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(
            f"{field}: File is not in a valid base64 format; send raw standard base64 (A-Z, a-z, 0-9, +, /, "
            "= padding) or an http(s) URL"
        ) from None


# --- headers: format, size and orientation without decoding pixels -----------------------------------


def _parse_header(data: bytes, *, field: str) -> _Header:
    if data.startswith(PNG_MAGIC):
        return _parse_png(data, field=field)
    if data.startswith(JPEG_MAGIC):
        return _parse_jpeg(data, field=field)
    found = _sniff(data)
    raise InputError(
        f"{field}: the file is {found}, not JPEG or PNG; convert it to JPEG or PNG and send it again"
    )


def _sniff(data: bytes) -> str:
    """Name the format of a file that is neither JPEG nor PNG, for the error message."""
    if not data:
        return "empty"
    signatures = [
        (data[:6] in (b"GIF87a", b"GIF89a"), "GIF"),
        (data[:4] == b"RIFF" and data[8:12] == b"WEBP", "WebP"),
        (data[:2] == b"BM", "BMP"),
        (data[:4] in (b"II*\x00", b"MM\x00*"), "TIFF"),
        (data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1"), "HEIC"),
        (data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"), "AVIF"),
        (data[4:8] == b"ftyp", "an MP4/QuickTime video"),
        (data[:4] == b"%PDF", "PDF"),
        (data.lstrip()[:1] == b"<", "text (HTML or SVG)"),
    ]
    for matched, name in signatures:
        if matched:
            return name
    return f"an unknown format (first bytes {data[:8].hex(' ')})"


def _parse_png(data: bytes, *, field: str) -> _Header:
    """Walk the chunks, keep the ones that draw the picture, and read IHDR and any EXIF orientation."""
    kept = [PNG_MAGIC]
    orientation = 1
    size: tuple[int, int] | None = None
    pos = len(PNG_MAGIC)
    while True:
        if pos + 8 > len(data):
            raise _corrupt(field, "PNG", "it ends before the IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise _corrupt(field, "PNG", f"its {kind.decode('latin-1')!r} chunk is cut short")
        body = data[pos + 8 : end - 4]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end - 4 : end])[0]:
            raise _corrupt(field, "PNG", f"its {kind.decode('latin-1')!r} chunk fails its checksum")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise _corrupt(field, "PNG", "it does not start with an IHDR chunk")
            size = struct.unpack(">II", body[:8])
        if kind in _PNG_KEPT:
            kept.append(data[pos:end])
        elif kind == b"eXIf":
            orientation = _exif_orientation(body)
        elif kind[0] & 0x20 == 0:  # an unknown critical chunk (e.g. Apple's CgBI) changes how pixels decode
            raise InputError(
                f"{field}: the PNG uses the unsupported {kind.decode('latin-1')!r} extension; "
                "re-save it as a standard PNG"
            )
        if kind == b"IEND":
            return _Header("PNG", size[0], size[1], orientation, b"".join(kept))
        pos = end


def _parse_jpeg(data: bytes, *, field: str) -> _Header:
    """Walk the segments up to the first scan; keep the decoding tables; read SOF and EXIF orientation."""
    kept = [data[:2]]
    sizes: list[tuple[int, int]] = []
    orientation = 1
    pos = 2
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise _corrupt(field, "JPEG", "its header is cut short or damaged")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            raise _corrupt(field, "JPEG", "it ends before its first scan")
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise _corrupt(field, "JPEG", "a header segment is cut short")
        body = data[pos + 4 : end]
        if marker == 0xDA:  # start of scan: the rest is pixel data, handed over untouched
            break
        if marker in _JPEG_SOF:
            if len(body) < 5:
                raise _corrupt(field, "JPEG", "its frame header is cut short")
            height, width = struct.unpack(">HH", body[1:5])
            sizes.append((width, height))
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            orientation = _exif_orientation(body[6:])
        metadata = 0xE0 <= marker <= 0xEF or marker == 0xFE  # APPn segments and comments
        if not metadata or marker in _JPEG_KEPT_APP:
            kept.append(data[pos:end])
        pos = end
    if not sizes:
        raise _corrupt(field, "JPEG", "it has no frame header")
    if data.rfind(b"\xff\xd9") < pos:
        raise _corrupt(field, "JPEG", "it ends before the end-of-image marker")
    # Pillow uses the last frame header it meets; check the largest so no header can exceed our limit.
    width, height = max(sizes, key=lambda s: s[0] * s[1])
    return _Header("JPEG", width, height, orientation, b"".join(kept) + data[pos:])


def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block; 1 when absent or unreadable."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
        if len(entry) < 12:
            return 1
        tag, kind, _, value = struct.unpack(order + "HHIH", entry[:10])
        if tag == 0x0112 and kind == 3:
            return value if value in _ORIENTATION else 1
    return 1


# --- checks and decoding ----------------------------------------------------------------------------


def _check_size(header: _Header, *, field: str, check_aspect: bool, max_pixels: int) -> None:
    width, height = header.width, header.height
    # Stay under Pillow's own bomb threshold too, so that Image.open never warns or raises on its own.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if width * height > limit:
        raise InputError(
            f"{field}: {width}×{height} is {width * height:,} pixels, more than the {limit:,}-pixel limit; "
            "scale the image down (for example to 1920×1080) and send it again"
        )
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{field}: the image is {width}×{height} pixels; width and height must both be at least "
            f"{MIN_SIDE} px, send a larger image"
        )
    if check_aspect and max(width, height) > MAX_ASPECT * min(width, height):
        raise InputError(
            f"{field}: the aspect ratio {width}:{height} is outside 1:2.5 to 2.5:1; crop the image "
            "closer to the video's shape and send it again"
        )


def _decode(header: _Header, *, field: str) -> InputImage:
    try:
        with Image.open(io.BytesIO(header.clean), formats=[header.format]) as image:
            image.load()
            rgb = _to_rgb(image)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as exc:
        raise _corrupt(field, header.format, f"it could not be decoded: {exc}") from None
    if header.orientation in _ORIENTATION:
        rgb = rgb.transpose(_ORIENTATION[header.orientation])
    rgb.info = {}  # nothing but pixels goes into the PNG
    out = io.BytesIO()
    rgb.save(out, format="PNG", compress_level=1)  # fast: this runs inside the create request
    return InputImage(out.getvalue(), rgb.width, rgb.height, header.format)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB pixels; transparency is composited onto white, as an image viewer shows it on a white page."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit greyscale: keep the top 8 bits
        image = image.point(lambda v: v / 257).convert("L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _corrupt(field: str, kind: str, why: str) -> InputError:
    return InputError(
        f"{field}: the {kind} file is corrupt or truncated ({why}); re-export it and send it again"
    )


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"
