"""Kinema's media codecs: frames (T, H, W, 3) uint8 RGB in and out of H.264 MP4, PNG posters and images.

The one module that touches PyAV. Encoding streams batch by batch; decoding refuses bad or oversized input
with a `MediaError` before it spends memory. It knows file paths and bytes, nothing of HTTP, SQL,
storage keys or torch.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import queue
import secrets
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import av
import numpy as np
from av.codec.context import ThreadType
from av.container import InputContainer, OutputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc, Interpolation
from av.video.stream import VideoStream
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from kinema.errors import MediaError

Source = str | os.PathLike[str] | bytes  # a file path, or the file's bytes
Size = tuple[int, int]  # (height, width)
Frames = NDArray[np.uint8]  # (T, H, W, 3) or one (H, W, 3) frame, RGB

PRESET = "veryfast"  # libx264: ~45% less CPU than "medium" for ~6% larger files (measured)
# Videos of at most this many display pixels encode with x264's zerolatency tune (no lookahead, no
# B-frames): every frame is coded as it is written, so closing a file flushes nothing, where lookahead
# held the last ~10 frames back until then — 60-90 ms at the end of each built-in clip, about half
# of its time outside the model (RESULTS.md, session 8), against files 1.5-1.7x larger at the same CRF.
# Larger (GPU) videos keep the lookahead: there the bits matter and the model's steps dwarf the flush.
LOW_LATENCY_PIXELS = 512 * 512
KEYFRAME_SECONDS = 2.0  # short GOPs keep browser scrubbing and `read_tail` cheap
BACKGROUND_BATCHES = 2  # batches a background encoder may hold before `write` waits for it
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")
TRANSPARENT_BACKGROUND = (255, 255, 255)  # transparent pixels of input images become white


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds; height and width are as displayed (after any rotation tag)."""

    fps: float
    num_frames: int
    height: int
    width: int
    duration_s: float


@dataclass(frozen=True)
class Video:
    """Decoded frames (T, H, W, 3) and the description of the file they came from."""

    frames: Frames
    info: VideoInfo


def display_size_for(height: int, width: int, *, min_short_side: int = 256) -> Size:
    """The smallest integer upscale of (height, width) with the short side >= min_short_side, both even."""
    scale = max(1, math.ceil(min_short_side / min(height, width)))
    if (height * scale) % 2 or (width * scale) % 2:
        scale += 1  # an odd side times an even scale is even
    return height * scale, width * scale


# ---------------------------------------------------------------------------------------------- writing


class VideoWriter:
    """Streams batches of frames into an H.264 MP4 that browsers play (yuv420p, BT.709, faststart).

    Memory stays flat however long the video: each batch is encoded as it arrives. The file is written
    under a temporary name beside `path` and renamed on success, so a failure never leaves half a file.
    With `background=True` a thread of its own encodes while the caller computes the next batch (PyAV
    lets go of the GIL while it scales and encodes); `write` waits only when `BACKGROUND_BATCHES`
    batches are still pending, and an encoding error surfaces at the next `write` or at `close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float,
        display_size: Size | None = None,
        crf: int = 18,
        background: bool = False,
    ) -> None:
        if fps <= 0 or not 0 <= crf <= 51:
            raise ValueError(f"fps must be positive and crf within 0..51, got fps={fps}, crf={crf}.")
        if display_size is not None and (min(display_size) <= 0 or any(side % 2 for side in display_size)):
            raise ValueError(f"display_size must be positive even numbers, got {display_size}.")
        self.path = Path(path)
        self._rate = Fraction(fps).limit_denominator(1001)
        self._display_size = display_size
        self._crf = crf
        self._partial = _partial_path(self.path)
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._frame_size: Size | None = None
        self._frames_written = 0  # handed to `write` (all in the file once `close` returns)
        self._frames_encoded = 0
        self._closed = False
        self._background = background
        self._pending: queue.Queue[Frames | None] = queue.Queue(maxsize=BACKGROUND_BATCHES)
        self._encoder: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def frames_written(self) -> int:
        return self._frames_written

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._discard()

    def write(self, frames: Frames) -> None:
        """Encode a batch (T, H, W, 3) uint8; every batch must have the first batch's H and W."""
        _check_frames(frames)
        if self._closed:
            raise ValueError("This VideoWriter is closed; open a new one to write another video.")
        size = (frames.shape[1], frames.shape[2])
        if self._container is None:
            self._open(size)
        elif size != self._frame_size:
            raise ValueError(f"Frames are {size}, but this video's frames are {self._frame_size}.")
        if not self._background:
            for frame in frames:
                self._encode(frame)
                self._frames_written += 1
            return
        self._raise_failure()
        if self._encoder is None:
            self._encoder = threading.Thread(target=self._encode_pending, name="video-encoder", daemon=True)
            self._encoder.start()
        self._pending.put(np.array(frames, copy=True))  # the caller may reuse its buffer
        self._frames_written += len(frames)

    def close(self) -> None:
        """Flush the encoder and move the finished file to `path`."""
        if self._closed:
            return
        if self._container is None or self._stream is None:
            self._discard()
            raise MediaError("No frames were written, so there is no video; write at least one frame.")
        try:
            self._finish_encoder()
            self._raise_failure()
            self._container.mux(self._stream.encode())
            self._container.close()
            os.replace(self._partial, self.path)
        except BaseException:
            self._discard()
            raise
        self._closed = True

    def _open(self, size: Size) -> None:
        output = self._display_size or size
        if output[0] % 2 or output[1] % 2:
            raise ValueError(f"H.264 needs even sides, got {size}; pass display_size=display_size_for(h, w).")
        _check_aspect(size, output)
        self._frame_size = size
        self._container = av.open(
            str(self._partial), "w", format="mp4", container_options={"movflags": "+faststart"}
        )
        stream = self._container.add_stream("libx264", rate=self._rate)
        stream.height, stream.width = output
        stream.pix_fmt = "yuv420p"
        options: dict[str, object] = {"crf": str(self._crf), "preset": PRESET}
        if output[0] * output[1] <= LOW_LATENCY_PIXELS:
            options["tune"] = "zerolatency"
        stream.options = options
        stream.codec_context.gop_size = max(1, round(KEYFRAME_SECONDS * self._rate))
        # Tag what `_encode` converts to, so players do not guess between BT.601 and BT.709.
        stream.codec_context.colorspace = Colorspace.ITU709  # AVCOL_SPC_BT709 has the same value, 1
        stream.codec_context.color_primaries = ColorPrimaries.BT709
        stream.codec_context.color_trc = ColorTrc.BT709
        stream.codec_context.color_range = ColorRange.MPEG
        self._stream = stream

    def _encode(self, frame: Frames) -> None:
        assert self._container is not None and self._stream is not None
        # One swscale pass upscales (bicubic: smooth edges without Lanczos' ringing around flat shapes)
        # and converts to BT.709 yuv420p; ~7x faster than resizing with Pillow first.
        picture = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(
            width=self._stream.width,
            height=self._stream.height,
            format="yuv420p",
            interpolation=Interpolation.BICUBIC,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            threads=_sws_threads(self._stream.height, self._stream.width),
        )
        picture.pts = self._frames_encoded
        self._container.mux(self._stream.encode(picture))
        self._frames_encoded += 1

    def _encode_pending(self) -> None:
        """The background encoder: batches in order until the `None` that `close` or `_discard` sends.

        After a failure it keeps taking batches (and drops them), so a `write` never waits forever."""
        while (batch := self._pending.get()) is not None:
            if self._failure is not None or self._closed:  # failed, or discarded: drop what is left
                continue
            try:
                for frame in batch:
                    self._encode(frame)
            except BaseException as exc:  # handed to the caller's thread by `_raise_failure`
                self._failure = exc

    def _finish_encoder(self) -> None:
        if self._encoder is not None:
            self._pending.put(None)
            self._encoder.join()
            self._encoder = None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _discard(self) -> None:
        self._closed = True
        self._finish_encoder()  # the encoder must be done with the file before it goes
        if self._container is not None:
            # The error that brought us here matters more than one from closing a broken file.
            with contextlib.suppress(Exception):
                self._container.close()
        self._partial.unlink(missing_ok=True)


def write_video(
    path: str | os.PathLike[str], frames: Frames, *, fps: float, display_size: Size | None = None
) -> None:
    """Encode one array of frames (T, H, W, 3) as an MP4; see `VideoWriter`."""
    with VideoWriter(path, fps=fps, display_size=display_size) as writer:
        writer.write(frames)


def write_poster(frame: Frames, path: str | os.PathLike[str], *, display_size: Size | None = None) -> None:
    """Save one frame (H, W, 3) as a PNG, upscaled like the video when display_size is given."""
    _check_frame(frame)
    if display_size is not None:
        _check_aspect((frame.shape[0], frame.shape[1]), display_size)
        frame = _upscale(frame, display_size)
    partial = _partial_path(Path(path))
    try:
        Image.fromarray(np.ascontiguousarray(frame)).save(partial, format="PNG")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _upscale(frame: Frames, size: Size) -> Frames:
    """The video's display scaling applied to one RGB frame, so posters match their videos."""
    picture = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24").reformat(
        width=size[1], height=size[0], interpolation=Interpolation.BICUBIC, threads=_sws_threads(*size)
    )
    return np.asarray(picture.to_ndarray(format="rgb24"), dtype=np.uint8)


def _sws_threads(height: int, width: int) -> int:
    """swscale's threads cost more than they save below about a megapixel; 0 means one per core."""
    return 1 if height * width < 1 << 20 else 0


def _partial_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def _check_aspect(size: Size, output: Size) -> None:
    """Refuse an output size that would stretch the frames by more than rounding allows."""
    if abs(output[0] * size[1] - output[1] * size[0]) > 0.02 * output[0] * size[1]:
        raise ValueError(f"display_size {output} does not have the aspect ratio of frames {size}.")


# ---------------------------------------------------------------------------------------------- reading


def probe(source: Source) -> VideoInfo:
    """Frame rate, frame count and displayed size of a video, decoding only its first frame."""
    with _open_input(source) as (container, stream):
        fps = _fps(stream)
        first = next(container.decode(stream), None)
        if first is None:
            raise MediaError("The video has no frames that can be decoded; upload a video that plays.")
        height, width = _frame_to_array(first, None).shape[:2]
        num_frames = stream.frames
    if num_frames <= 0:  # some containers (WebM, MKV) do not store the count: count the packets
        num_frames = _count_packets(source)
    return VideoInfo(fps=fps, num_frames=num_frames, height=height, width=width, duration_s=num_frames / fps)


def iter_frames(
    source: Source, *, max_frames: int, max_pixels: int, size: Size | None = None
) -> Iterator[Frames]:
    """Yield a video's frames (H, W, 3) one by one, fitted to `size` (H, W) when given."""
    with _open_input(source) as (container, stream):
        _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels)
        _check_count(stream.frames, max_frames)
        count = 0
        for frame in container.decode(stream):
            count += 1
            _check_count(count, max_frames)
            _check_pixels(frame.width, frame.height, max_pixels)  # the size may change mid-stream
            yield _frame_to_array(frame, size)
    if count == 0:
        raise MediaError("The video has no frames that can be decoded; upload a video that plays.")


def read_video(source: Source, *, max_frames: int, max_pixels: int, size: Size | None = None) -> Video:
    """Decode a whole video within limits; frames are fitted to `size` (H, W) when given."""
    decoded = list(iter_frames(source, max_frames=max_frames, max_pixels=max_pixels, size=size))
    if len({frame.shape for frame in decoded}) > 1:
        raise MediaError("The video changes its picture size midway; re-encode it at one size and upload it.")
    frames = np.stack(decoded)
    info = probe(source)
    return Video(frames, replace(info, num_frames=len(frames), duration_s=len(frames) / info.fps))


def read_tail(
    source: Source, num_frames: int, *, size: Size | None = None, max_pixels: int | None = None
) -> Frames:
    """The last `num_frames` frames (N, H, W, 3), fitted to `size`, holding no more than N at a time.

    Seeks to the keyframe before the tail and decodes from there; if that lands too late (missing or
    wrong index), decodes the whole video once more from the start.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}.")
    tail = _decode_tail(source, num_frames, seek=True, size=size, max_pixels=max_pixels)
    if len(tail) < num_frames:
        tail = _decode_tail(source, num_frames, seek=False, size=size, max_pixels=max_pixels)
    if len(tail) < num_frames:
        raise MediaError(f"The video has only {len(tail)} frames; use a video of at least {num_frames}.")
    return np.stack(tail)


def _decode_tail(
    source: Source, num_frames: int, *, seek: bool, size: Size | None, max_pixels: int | None
) -> list[Frames]:
    with _open_input(source) as (container, stream):
        if max_pixels is not None:
            _check_pixels(stream.codec_context.width, stream.codec_context.height, max_pixels)
        start = _tail_start(stream, num_frames) if seek else None
        if start is not None:
            container.seek(start, stream=stream, backward=True)
        tail = deque(container.decode(stream), maxlen=num_frames)  # decoded frames, not yet RGB
        return [_frame_to_array(frame, size) for frame in tail]


def _tail_start(stream: VideoStream, num_frames: int) -> int | None:
    """Timestamp (stream time base) one frame before the tail, or None when the stream lacks timing."""
    rate, time_base = stream.average_rate, stream.time_base
    if not stream.duration or not rate or not time_base:
        return None
    first = stream.start_time or 0
    start = first + stream.duration - (num_frames + 1) / (rate * time_base)
    return math.floor(start) if start > first else None


@contextlib.contextmanager
def _open_input(source: Source) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The first video stream of a file or bytes; FFmpeg's failures on the data become MediaError."""
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with av.open(file, "r") as container:
            name = container.format.name
            if name == "image2" or name.endswith("_pipe"):
                raise MediaError("The file is a still image, not a video; upload it as an image instead.")
            if not container.streams.video:
                raise MediaError("The file has no video stream; upload an MP4, WebM or MOV video.")
            stream = container.streams.video[0]
            stream.thread_type = ThreadType.AUTO
            yield container, stream
    except av.FFmpegError as exc:
        if isinstance(exc, OSError):
            raise  # a missing or unreadable path is the caller's bug, not bad media
        raise MediaError(
            f"The file could not be read as a video ({exc.strerror}); upload an MP4, WebM or MOV that plays."
        ) from exc


def _count_packets(source: Source) -> int:
    with _open_input(source) as (container, stream):
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _fps(stream: VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise MediaError("The video has no frame rate; re-encode it at a constant frame rate and upload it.")
    return float(rate)


def _frame_to_array(frame: VideoFrame, size: Size | None) -> Frames:
    """RGB (H, W, 3) as displayed: rotation tags applied, colours converted with the stream's matrix."""
    array = np.asarray(
        frame.to_ndarray(format="rgb24", threads=_sws_threads(frame.height, frame.width)), dtype=np.uint8
    )
    if frame.rotation:
        array = np.rot90(array, k=round(frame.rotation / 90))  # rotation is counterclockwise degrees
    array = np.ascontiguousarray(array)
    return array if size is None else fit_image(array, size)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise MediaError(
            f"The video is {width}x{height} pixels, over the limit of {max_pixels:,} pixels a frame; "
            "scale it down and upload it again."
        )


def _check_count(num_frames: int, max_frames: int) -> None:
    if num_frames > max_frames:
        raise MediaError(f"The video has more than {max_frames} frames; trim it to {max_frames} or fewer.")


# ---------------------------------------------------------------------------------------------- images


def read_image(source: Source, *, max_pixels: int, min_side: int | None = None) -> Frames:
    """Decode a PNG, JPEG or WebP to RGB (H, W, 3): EXIF orientation applied, transparency on white.

    The size is checked from the header before any pixel is decoded.
    """
    with _open_image(source) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise MediaError(
                f"The image is {width}x{height} pixels, over the limit of {max_pixels:,}; "
                "scale it down and upload it again."
            )
        if min_side is not None and min(width, height) < min_side:
            raise MediaError(
                f"The image is {width}x{height} pixels; upload one whose shorter side is at least {min_side}."
            )
        return _decode_image(image)


@contextlib.contextmanager
def _open_image(source: Source) -> Iterator[Image.Image]:
    file = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        # Pillow checks its own pixel limit inside open(); make its warning an error we can translate.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file, formats=IMAGE_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise MediaError("The image has far too many pixels; scale it down and upload it again.") from exc
    except UnidentifiedImageError as exc:
        raise MediaError("The file is not a PNG, JPEG or WebP image; upload one of those.") from exc
    with image:
        yield image


def _decode_image(image: Image.Image) -> Frames:
    try:
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
            rgba = upright.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (*TRANSPARENT_BACKGROUND, 255))
            upright = Image.alpha_composite(background, rgba)
        return np.array(upright.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError, EOFError) as exc:
        raise MediaError("The image is truncated or corrupt; export it again and upload that file.") from exc


def fit_image(image: Frames, size: Size, *, mode: Literal["cover", "contain"] = "cover") -> Frames:
    """Resize (H, W, 3) to `size` (H, W): "cover" crops the centre to fill, "contain" pads with black."""
    _check_frame(image)
    height, width = image.shape[:2]
    if mode == "cover":
        scale = max(size[0] / height, size[1] / width)
        crop_h, crop_w = size[0] / scale, size[1] / scale
        top, left = (height - crop_h) / 2, (width - crop_w) / 2
        return _resize(image, size, box=(left, top, left + crop_w, top + crop_h))
    if mode == "contain":
        scale = min(size[0] / height, size[1] / width)
        inner = (max(1, round(height * scale)), max(1, round(width * scale)))
        canvas = np.zeros((*size, 3), dtype=np.uint8)
        top, left = (size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2
        canvas[top : top + inner[0], left : left + inner[1]] = _resize(image, inner)
        return canvas
    raise ValueError(f'mode must be "cover" or "contain", got {mode!r}.')


def _resize(image: Frames, size: Size, *, box: tuple[float, float, float, float] | None = None) -> Frames:
    """Pillow resize of the `box` region: area averaging when shrinking, bicubic when enlarging."""
    box = box or (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
    if (box[3] - box[1], box[2] - box[0]) == size and box[:2] == (0.0, 0.0):
        return image.copy()
    shrinking = size[0] < box[3] - box[1]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((size[1], size[0]), resample, box=box)
    return np.array(resized, dtype=np.uint8)


def _check_frames(frames: Frames) -> None:
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"Expected a non-empty batch (T, H, W, 3), got shape {frames.shape}.")
    _check_frame(frames[0])


def _check_frame(frame: Frames) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"Expected uint8 RGB (H, W, 3), got {frame.dtype} with shape {frame.shape}.")
