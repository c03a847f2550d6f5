"""The engine: one request becomes one or more videos (or images) on disk.

`Engine.run` is the one visible loop, written as numbered steps: resolve the request for the model,
load conditioning media, generate segment after segment (long videos are chained, frames streamed to
the encoder), write posters, return the result. It knows nothing about HTTP, SQL or storage: progress
goes out through `on_step(step, total, preview)` and cancellation comes in through `should_stop()`.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kinema.backends.base import Backend, Segment, StepCallback, StopCheck
from kinema.engine import video
from kinema.engine.segments import colour_anchor, match_colour, plan_segments
from kinema.errors import InvalidRequest
from kinema.spec import (
    Candidate,
    Capabilities,
    ExtendVideo,
    ImageToVideo,
    Plan,
    Result,
    TextToImage,
    TextToVideo,
    nearest_aspect,
    resolve,
)

AnyRequest = TextToVideo | ImageToVideo | ExtendVideo | TextToImage
MAX_INPUT_PIXELS = 4096 * 4096
MAX_INPUT_FRAMES = 60 * 60 * 30  # one hour at 30 fps


def _no_progress(step: int, total: int, preview: np.ndarray | None) -> None:
    del step, total, preview


def _never() -> bool:
    return False


class Engine:
    """Runs requests against backends found by model id."""

    def __init__(self, backend_for: Callable[[str], Backend]) -> None:
        self.backend_for = backend_for

    def run(
        self,
        request: AnyRequest,
        out_dir: Path,
        *,
        on_step: StepCallback = _no_progress,
        should_stop: StopCheck = _never,
    ) -> Result:
        started = time.monotonic()
        # 1. Pick the backend and make the request concrete for it.
        backend = self.backend_for(request.model)
        caps = backend.capabilities()
        request = self._fit_aspect(request, caps)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        plan = resolve(request, caps, seed=seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        seeds = tuple(seed + i for i in range(plan.n))
        display = video.display_size_for(plan.height, plan.width)
        # 2. Images are one denoised frame; everything else is a (chained) video.
        if isinstance(request, TextToImage):
            candidates = self._image(backend, caps, plan, seeds, out_dir, display, on_step, should_stop)
        else:
            candidates = self._video(
                request, backend, caps, plan, seeds, out_dir, display, on_step, should_stop
            )
        return Result(
            kind=plan.kind,
            plan=plan,
            candidates=candidates,
            display_height=display[0],
            display_width=display[1],
            elapsed_s=round(time.monotonic() - started, 3),
        )

    # --- steps ---------------------------------------------------------------------------------------
    def _fit_aspect(self, request: AnyRequest, caps: Capabilities) -> AnyRequest:
        """For image-to-video and extension the input decides the aspect ratio, not the request."""
        if isinstance(request, ImageToVideo):
            path = request.image or request.image_tail
            assert path is not None  # the request validator guarantees one
            h, w = video.read_image(Path(path), max_pixels=MAX_INPUT_PIXELS).shape[:2]
        elif isinstance(request, ExtendVideo):
            info = video.probe(Path(request.video))
            h, w = info.height, info.width
        else:
            return request
        return request.model_copy(update={"aspect_ratio": nearest_aspect(w / h, caps.canvases)})

    def _image(
        self,
        backend: Backend,
        caps: Capabilities,
        plan: Plan,
        seeds: tuple[int, ...],
        out_dir: Path,
        display: tuple[int, int],
        on_step: StepCallback,
        should_stop: StopCheck,
    ) -> list[Candidate]:
        length = caps.frame_multiple + caps.frame_offset  # the shortest legal clip: one still
        frames = backend.generate(
            self._segment(plan, seeds, length, plan.num_inference_steps),
            on_step=on_step,
            should_stop=should_stop,
        )
        candidates = []
        for i, seed in enumerate(seeds):
            path = out_dir / f"image-{i}.png"
            video.write_poster(frames[i, 0], path, display_size=display)
            candidates.append(Candidate(index=i, seed=seed, image=str(path), poster=str(path)))
        return candidates

    def _video(
        self,
        request: TextToVideo | ImageToVideo | ExtendVideo,
        backend: Backend,
        caps: Capabilities,
        plan: Plan,
        seeds: tuple[int, ...],
        out_dir: Path,
        display: tuple[int, int],
        on_step: StepCallback,
        should_stop: StopCheck,
    ) -> list[Candidate]:
        n = plan.n
        first, last, tail = self._conditioning(request, plan)
        segments = plan_segments(plan.num_frames, caps, continues=tail is not None)
        total = len(segments) * plan.num_inference_steps
        paths = [out_dir / f"video-{i}.mp4" for i in range(n)]
        with contextlib.ExitStack() as stack:
            writers = [
                # Each video is encoded on a thread of its own while the model draws the next segment.
                stack.enter_context(video.VideoWriter(p, fps=plan.fps, display_size=display, background=True))
                for p in paths
            ]
            if isinstance(request, ExtendVideo):  # the result is the whole video: the original, then more
                for batch in _resampled(Path(request.video), plan.fps, (plan.height, plan.width)):
                    for writer in writers:
                        writer.write(batch)
            # Posters (the middle of the first segment) are drawn while the model goes on.
            poster_pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="kinema-poster"))
            posters: list[Future[None]] = []
            anchor = None if tail is None else colour_anchor(tail)
            done = 0
            for index, seg in enumerate(segments):
                given: dict[int, np.ndarray] = {}
                if seg.context:
                    assert tail is not None
                    given.update({k: tail[:, -seg.context + k] for k in range(seg.context)})
                if index == 0 and first is not None:
                    given[0] = np.repeat(first[None], n, axis=0)
                if index == len(segments) - 1 and last is not None:
                    given[seg.context + seg.new - 1] = np.repeat(last[None], n, axis=0)

                def step_cb(step: int, _total: int, preview: np.ndarray | None, _done: int = done) -> None:
                    on_step(_done + step, total, preview)

                segment = self._segment(
                    plan, _segment_seeds(seeds, index), seg.length, plan.num_inference_steps, given=given
                )
                frames = backend.generate(segment, on_step=step_cb, should_stop=should_stop)
                new = frames[:, seg.context : seg.context + seg.new]  # (n, new, H, W, 3)
                anchor = colour_anchor(new) if anchor is None else anchor
                new = match_colour(new, anchor)
                for i, writer in enumerate(writers):
                    writer.write(new[i])
                if not posters:
                    posters = [
                        poster_pool.submit(
                            video.write_poster, new[i, new.shape[1] // 2].copy(), poster, display_size=display
                        )
                        for i, poster in enumerate(_posters(out_dir, n))
                    ]
                tail = (
                    np.concatenate([tail, new], axis=1)[:, -caps.context_frames :]
                    if tail is not None
                    else (new[:, -caps.context_frames :])
                )
                done += plan.num_inference_steps
            frame_counts = [w.frames_written for w in writers]
        for job in posters:
            job.result()  # raises what drawing a poster raised
        candidates = []
        for i, (seed, poster) in enumerate(zip(seeds, _posters(out_dir, n), strict=True)):
            candidates.append(
                Candidate(
                    index=i,
                    seed=seed,
                    video=str(paths[i]),
                    poster=str(poster),
                    num_frames=frame_counts[i],
                    duration_s=round(frame_counts[i] / plan.fps, 3),
                )
            )
        return candidates

    def _conditioning(
        self, request: TextToVideo | ImageToVideo | ExtendVideo, plan: Plan
    ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """First frame, last frame (H, W, 3) and the tail of a video to continue (n, T, H, W, 3)."""
        size = (plan.height, plan.width)
        if isinstance(request, ImageToVideo):
            first = last = None
            if request.image:
                first = video.fit_image(
                    video.read_image(Path(request.image), max_pixels=MAX_INPUT_PIXELS), size
                )
            if request.image_tail:
                last = video.fit_image(
                    video.read_image(Path(request.image_tail), max_pixels=MAX_INPUT_PIXELS), size
                )
            return first, last, None
        if isinstance(request, ExtendVideo):
            caps_context = self.backend_for(request.model).capabilities().context_frames
            tail = video.read_tail(Path(request.video), caps_context, size=size)
            if tail.shape[0] < caps_context:
                raise InvalidRequest(
                    f"the video to extend has {tail.shape[0]} frames; at least {caps_context} are needed"
                )
            return None, None, np.repeat(tail[None], plan.n, axis=0)
        return None, None, None

    @staticmethod
    def _segment(
        plan: Plan,
        seeds: tuple[int, ...],
        length: int,
        steps: int,
        *,
        given: dict[int, np.ndarray] | None = None,
    ) -> Segment:
        return Segment(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            num_frames=length,
            height=plan.height,
            width=plan.width,
            num_inference_steps=steps,
            guidance_scale=plan.guidance_scale,
            seeds=seeds,
            given=given or {},
        )


def _posters(out_dir: Path, n: int) -> list[Path]:
    return [out_dir / f"video-{i}.png" for i in range(n)]


def _segment_seeds(seeds: tuple[int, ...], index: int) -> tuple[int, ...]:
    """Distinct, reproducible noise per segment: segment 0 uses the request seeds themselves."""
    return tuple((seed + 1_000_003 * index) % 2**63 for seed in seeds)


def _resampled(path: Path, fps: int, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """The frames of `path` at `fps` and the model's canvas size, in small batches (never the whole video).

    The writer upscales them exactly like the new frames, so the original and its extension match.
    """
    info = video.probe(path)
    ratio = info.fps / fps
    wanted = 0
    batch: list[np.ndarray] = []
    for index, frame in enumerate(
        video.iter_frames(path, max_frames=MAX_INPUT_FRAMES, max_pixels=MAX_INPUT_PIXELS, size=size)
    ):
        while round(wanted * ratio) == index:
            batch.append(frame)
            wanted += 1
        if len(batch) >= 32:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)
