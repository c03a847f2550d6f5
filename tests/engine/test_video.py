"""Media codecs: MP4 out and back in, faststart, streaming, limits on input, images and posters."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType
from PIL import Image

from kinema.engine import video
from kinema.errors import MediaError
from kinema.world.render import render, sample_scene

FPS = 8
LIMITS = {"max_frames": 1000, "max_pixels": 1_000_000}


def _clip(num_frames: int, *, aspect: str = "16:9", motion: str = "bouncing") -> np.ndarray:
    """A rendered clip of the built-in world, (T, H, W, 3) uint8."""
    rng = np.random.default_rng(7)
    scene = sample_scene(
        rng, aspect=aspect, shape="square", colour="yellow", background="navy", motion=motion
    )
    return render(scene, num_frames)


def _top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:  # a 64-bit size follows the type
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        boxes.append(kind.decode("ascii"))
        offset += size
    return boxes


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming width x height, then an IDAT chunk with no data behind it."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", 1 << 20) + b"IDAT"


def _encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def _halves(height: int, width: int) -> np.ndarray:
    """Left half red, right half blue."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (255, 0, 0)
    image[:, width // 2 :] = (0, 0, 255)
    return image


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((27, 48), (270, 480)),
        ((36, 36), (288, 288)),
        ((48, 27), (480, 270)),
        ((25, 40), (300, 480)),  # x11 would give an odd 275, so x12
        ((480, 640), (480, 640)),
    ],
)
def test_display_size_for_picks_an_integer_scale_with_even_sides(
    size: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert video.display_size_for(*size) == expected


def test_round_trip_keeps_frame_count_fps_size_and_pixels(tmp_path: Path) -> None:
    frames = _clip(16)  # (16, 27, 48, 3)
    path = tmp_path / "clip.mp4"
    video.write_video(path, frames, fps=FPS, display_size=video.display_size_for(27, 48))

    decoded = video.read_video(path, **LIMITS, size=(27, 48))

    assert decoded.info == video.VideoInfo(fps=8.0, num_frames=16, height=270, width=480, duration_s=2.0)
    assert decoded.frames.shape == (16, 27, 48, 3)
    assert decoded.frames.dtype == np.uint8
    assert np.abs(decoded.frames.astype(np.float64) - frames).mean() < 3.0


def test_mp4_is_faststart_with_moov_before_mdat(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    video.write_video(path, _clip(8, aspect="1:1"), fps=FPS)

    boxes = _top_level_boxes(path)

    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def _picture_types(path: Path) -> set[str]:
    with av.open(str(path)) as container:
        return {PictureType(frame.pict_type).name for frame in container.decode(video=0)}


def test_small_videos_code_each_frame_as_written_and_large_ones_keep_b_frames(tmp_path: Path) -> None:
    # Small (built-in model) videos use x264's zerolatency tune, so closing the file flushes nothing; a
    # large video keeps the lookahead and its B-frames, which pay off in bits there.
    small, large = tmp_path / "small.mp4", tmp_path / "large.mp4"
    frames = _clip(24)
    video.write_video(small, frames, fps=FPS, display_size=video.display_size_for(27, 48))
    video.write_video(large, frames, fps=FPS, display_size=(540, 960))
    assert 270 * 480 <= video.LOW_LATENCY_PIXELS < 540 * 960
    assert "B" not in _picture_types(small)
    assert "B" in _picture_types(large)


def test_many_small_batches_stream_into_one_video(tmp_path: Path) -> None:
    frames = _clip(60, aspect="1:1")
    path = tmp_path / "long.mp4"
    with video.VideoWriter(path, fps=FPS) as writer:
        for start in range(0, 60, 2):
            writer.write(frames[start : start + 2])
            assert writer.frames_written == start + 2
        assert not path.exists()  # the file appears only when the writer closes

    assert video.probe(path) == video.VideoInfo(fps=8.0, num_frames=60, height=36, width=36, duration_s=7.5)


def test_exception_in_block_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    path.write_bytes(b"the previous video")
    with pytest.raises(RuntimeError), video.VideoWriter(path, fps=FPS) as writer:
        writer.write(_clip(4, aspect="1:1"))
        raise RuntimeError("the backend died")

    assert path.read_bytes() == b"the previous video"
    assert list(tmp_path.iterdir()) == [path]


def test_a_background_writer_writes_the_same_video_as_one_in_the_callers_thread(tmp_path: Path) -> None:
    frames = _clip(24)
    size = video.display_size_for(27, 48)
    with video.VideoWriter(tmp_path / "inline.mp4", fps=FPS, display_size=size) as writer:
        for start in range(0, 24, 8):
            writer.write(frames[start : start + 8])
    reused = np.empty_like(frames[:8])  # the caller refills one buffer: the writer must have copied it
    with video.VideoWriter(tmp_path / "bg.mp4", fps=FPS, display_size=size, background=True) as writer:
        for start in range(0, 24, 8):
            reused[:] = frames[start : start + 8]
            writer.write(reused)

    inline = video.read_video(tmp_path / "inline.mp4", **LIMITS, size=(27, 48))
    background = video.read_video(tmp_path / "bg.mp4", **LIMITS, size=(27, 48))
    assert background.info == inline.info
    # Frame by frame, as close to the source as the inline video (x264 under load need not repeat
    # itself bit for bit); a writer that kept the caller's buffer would show the last batch's object.
    for got, same, want in zip(background.frames, inline.frames, frames, strict=True):
        assert np.abs(got.astype(np.float64) - want).mean() < 3.0
        assert np.abs(got.astype(np.float64) - same).mean() < 1.0


def test_a_background_encoding_error_reaches_the_caller_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.mp4"
    writer = video.VideoWriter(path, fps=FPS, background=True)

    def broken(_frame: np.ndarray) -> None:
        raise MediaError("the encoder broke")

    monkeypatch.setattr(writer, "_encode", broken)
    writer.write(_clip(4, aspect="1:1"))
    with pytest.raises(MediaError, match="the encoder broke"):
        for _ in range(10):  # at the latest when the writer closes
            writer.write(_clip(4, aspect="1:1"))
        writer.close()
    writer._discard()
    assert list(tmp_path.iterdir()) == []


def test_a_background_writer_abandoned_midway_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), video.VideoWriter(path, fps=FPS, background=True) as writer:
        for _ in range(5):
            writer.write(_clip(8, aspect="1:1"))
        raise RuntimeError("cancelled")
    assert list(tmp_path.iterdir()) == []


def test_writer_without_frames_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="No frames"), video.VideoWriter(tmp_path / "empty.mp4", fps=FPS):
        pass

    assert list(tmp_path.iterdir()) == []


def test_odd_frame_sizes_need_a_display_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="display_size"):
        video.write_video(tmp_path / "odd.mp4", _clip(2), fps=FPS)  # 27x48

    assert list(tmp_path.iterdir()) == []


def test_poster_is_a_png_at_display_size(tmp_path: Path) -> None:
    frame = _clip(1)[0]
    path = tmp_path / "poster.png"

    video.write_poster(frame, path, display_size=(270, 480))

    assert path.read_bytes().startswith(b"\x89PNG")
    poster = video.read_image(path, max_pixels=1_000_000)
    assert poster.shape == (270, 480, 3)
    assert np.abs(video.fit_image(poster, (27, 48)).astype(np.float64) - frame).mean() < 3.0


# ---------------------------------------------------------------------------------------------- reading


def test_read_tail_returns_exactly_the_last_frames(tmp_path: Path) -> None:
    frames = _clip(60, aspect="1:1")  # 60 frames, a keyframe every 16: the tail is found by seeking
    path = tmp_path / "long.mp4"
    video.write_video(path, frames, fps=FPS, display_size=(72, 72))
    everything = video.read_video(path, **LIMITS, size=(36, 36)).frames

    tail = video.read_tail(path, 5, size=(36, 36))

    np.testing.assert_array_equal(tail, everything[-5:])
    errors = np.abs(tail[:, None].astype(np.float64) - frames[None]).mean(axis=(2, 3, 4))  # (5, 60)
    assert errors.argmin(axis=1).tolist() == [55, 56, 57, 58, 59]


def test_read_tail_decodes_from_the_start_when_the_seek_lands_too_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.mp4"
    video.write_video(path, _clip(40, aspect="1:1"), fps=FPS)
    expected = video.read_video(path, **LIMITS).frames[-20:]
    monkeypatch.setattr(video, "_tail_start", lambda stream, num_frames: stream.duration)  # the last GOP

    np.testing.assert_array_equal(video.read_tail(path, 20), expected)


def test_read_tail_of_a_short_video_raises(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    video.write_video(path, _clip(3, aspect="1:1"), fps=FPS)

    with pytest.raises(MediaError, match="only 3 frames"):
        video.read_tail(path, 8)


def test_iter_frames_from_bytes_streams_fitted_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    video.write_video(path, _clip(6, aspect="1:1"), fps=FPS)

    shapes = [frame.shape for frame in video.iter_frames(path.read_bytes(), **LIMITS, size=(12, 12))]

    assert shapes == [(12, 12, 3)] * 6


def test_video_over_the_limits_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    video.write_video(path, _clip(10, aspect="1:1"), fps=FPS, display_size=(288, 288))

    with pytest.raises(MediaError, match="more than 9 frames"):
        video.read_video(path, max_frames=9, max_pixels=1_000_000)
    with pytest.raises(MediaError, match="288x288 pixels"):
        video.read_video(path, max_frames=100, max_pixels=288 * 287)


def test_rotation_tag_is_applied(tmp_path: Path) -> None:
    # A phone's portrait video: landscape pixels plus "rotate 90 degrees clockwise to display".
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(-90)
        for index in range(2):
            frame = av.VideoFrame.from_ndarray(_halves(32, 64), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())

    frames = video.read_video(path, **LIMITS).frames

    assert video.probe(path).height == 64 and video.probe(path).width == 32
    assert frames.shape == (2, 64, 32, 3)
    assert frames[0, 8, 16, 0] > 200 and frames[0, 56, 16, 2] > 200  # red on top, blue below


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 8, b"just some text, not a video\n" * 40, b""],
    ids=["random-bytes", "text", "empty"],
)
def test_bytes_that_are_not_a_video_raise_media_error(data: bytes) -> None:
    with pytest.raises(MediaError, match="could not be read as a video"):
        video.read_video(data, **LIMITS)


def test_text_file_is_neither_video_nor_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("shopping list\n" * 50)

    with pytest.raises(MediaError, match="could not be read as a video"):
        video.probe(path)
    with pytest.raises(MediaError, match="not a PNG, JPEG or WebP"):
        video.read_image(path, max_pixels=1_000_000)


def test_still_image_is_not_a_video() -> None:
    png = _encoded(Image.new("RGB", (32, 32)), "PNG")

    with pytest.raises(MediaError, match="still image"):
        video.read_video(png, **LIMITS)


# ---------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_read_image_decodes_common_formats(fmt: str) -> None:
    image = _halves(20, 40)

    decoded = video.read_image(_encoded(Image.fromarray(image), fmt, quality=95), max_pixels=10_000)

    assert decoded.shape == (20, 40, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded[:, 4:16].astype(np.int64) - image[:, 4:16]).max() < 24


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (5_000, 5_000)])
def test_huge_image_header_is_refused_before_decoding(width: int, height: int) -> None:
    with pytest.raises(MediaError, match="pixels"):
        video.read_image(_png_header(width, height), max_pixels=1_000_000)


def test_too_small_image_is_refused() -> None:
    png = _encoded(Image.new("RGB", (64, 8)), "PNG")

    with pytest.raises(MediaError, match="at least 16"):
        video.read_image(png, max_pixels=10_000, min_side=16)


def test_corrupt_image_is_refused() -> None:
    png = _encoded(Image.fromarray(_halves(64, 64)), "PNG")

    with pytest.raises(MediaError, match="truncated or corrupt"):
        video.read_image(png[: len(png) // 2], max_pixels=10_000)


def test_rgba_is_flattened_on_white() -> None:
    rgba = np.zeros((8, 12, 4), dtype=np.uint8)
    rgba[:, :4] = (255, 0, 0, 0)  # fully transparent red
    rgba[:, 4:8] = (0, 0, 255, 255)  # opaque blue
    rgba[:, 8:] = (0, 255, 0, 128)  # half-transparent green

    image = video.read_image(_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), max_pixels=10_000)

    assert image.shape == (8, 12, 3)
    assert image[0, 0].tolist() == [255, 255, 255]
    assert image[0, 5].tolist() == [0, 0, 255]
    assert np.abs(image[0, 10].astype(np.int64) - (127, 255, 127)).max() <= 1


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    jpeg = _encoded(Image.fromarray(_halves(20, 40)), "JPEG", exif=exif.tobytes(), quality=95)

    image = video.read_image(jpeg, max_pixels=10_000)

    assert image.shape == (40, 20, 3)
    assert image[5, 10, 0] > 200 and image[35, 10, 2] > 200  # the left half is now on top


def test_fit_image_cover_crops_the_centre() -> None:
    fitted = video.fit_image(_halves(20, 40), (10, 10))

    assert fitted.shape == (10, 10, 3)
    np.testing.assert_array_equal(fitted[:, :5], np.broadcast_to((255, 0, 0), (10, 5, 3)))
    np.testing.assert_array_equal(fitted[:, 5:], np.broadcast_to((0, 0, 255), (10, 5, 3)))


def test_fit_image_contain_pads_with_black() -> None:
    fitted = video.fit_image(_halves(20, 40), (20, 20), mode="contain")

    assert fitted.shape == (20, 20, 3)
    assert not fitted[:5].any() and not fitted[15:].any()  # bars above and below
    np.testing.assert_array_equal(fitted[5:15, :10], np.broadcast_to((255, 0, 0), (10, 10, 3)))
