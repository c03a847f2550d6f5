"""`kinema` commands: generate, image, models (cli/models.py), eval, train.

Errors print one clear sentence and exit with status 2; a live progress bar shows generation.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from kinema.errors import KinemaError
from kinema.settings import Settings
from kinema.spec import AspectRatio, Mode, Result

app = typer.Typer(
    help="Kinema: open, self-hostable AI video generation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
eval_app = typer.Typer(help="Measure a model with the analytic checker.", no_args_is_help=True)
train_app = typer.Typer(help="Train the built-in model.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
console = Console(stderr=True)
T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn Kinema's and pydantic's errors into one line and exit status 2."""
    try:
        yield
    except KinemaError as exc:
        raise fail(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise fail(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    except FileNotFoundError as exc:
        raise fail(f"file not found: {exc.filename}") from None


@contextmanager
def stop_signals(
    first: Callable[[str], None], again: Callable[[str], None] | None = None
) -> Iterator[threading.Event]:
    """SIGINT / SIGTERM set the yielded event after `first(name)`: the caller winds down. A later one
    calls `again(name)`, or with no `again` the handler that was there before (SIGTERM's default ends the
    process, SIGINT's raises KeyboardInterrupt). The previous handlers are back on the way out."""
    stop = threading.Event()
    previous: dict[int, Any] = {}

    def handle(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            first(name)
            stop.set()
        elif again is not None:
            again(name)
        else:
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handle)
    try:
        yield stop
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def build_engine(settings: Settings) -> Any:
    """The composition root for local generation: threads, model registry, engine.

    The built-in model is always served; `settings.models_file` adds open-weight models.
    """
    import torch

    from kinema.backends.models_file import read_models_file
    from kinema.backends.registry import ModelEntry, Registry
    from kinema.engine.generation import Engine

    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    options = {"weights": settings.builtin_weights} if settings.builtin_weights else {}
    entries: tuple[ModelEntry, ...] = (ModelEntry(id="builtin", family="builtin", options=options),)
    if settings.models_file is not None:
        entries += read_models_file(settings.models_file)
    registry = Registry(entries)
    return Engine(registry.get), registry


def run_with_progress(label: str, work: Callable[[Callable[[int, int, Any], None]], T]) -> T:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def on_step(step: int, total: int, preview: Any) -> None:
            del preview
            bar.update(task, completed=step, total=total)

        return work(on_step)


def place_outputs(result: Result, output: Path) -> list[Path]:
    """Move candidate files from the work folder to `output` (`name-1.mp4`... for several)."""
    placed = []
    output.parent.mkdir(parents=True, exist_ok=True)
    for cand in result.candidates:
        stem = output.stem if len(result.candidates) == 1 else f"{output.stem}-{cand.index}"
        source = Path(cand.video or cand.image or "")
        target = output.with_name(stem + output.suffix)
        shutil.move(source, target)
        placed.append(target)
        if cand.poster and cand.video:
            shutil.move(cand.poster, target.with_suffix(".png"))
    return placed


def _generate(request: Any, output: Path, label: str) -> None:
    settings = Settings()
    engine, _ = build_engine(settings)
    with tempfile.TemporaryDirectory(dir=output.parent if output.parent.exists() else None) as work:
        result: Result = run_with_progress(
            label, lambda on_step: engine.run(request, Path(work), on_step=on_step)
        )
        paths = place_outputs(result, output)
    plan = result.plan
    for path, cand in zip(paths, result.candidates, strict=True):
        extra = f", {cand.duration_s:g} s, {cand.num_frames} frames" if cand.video else ""
        typer.echo(f"{path}  (seed {cand.seed}{extra})")
    console.print(
        f"{plan.model}: {plan.width}x{plan.height} drawn, shown at {result.display_width}x"
        f"{result.display_height}, {plan.num_inference_steps} steps, guidance {plan.guidance_scale:g}, "
        f"{result.elapsed_s:.1f} s"
    )


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")] = "",
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 to write.")] = Path("out/video.mp4"),
    image: Annotated[Path | None, typer.Option(help="First frame (image-to-video).")] = None,
    image_tail: Annotated[Path | None, typer.Option(help="Last frame (image-to-video).")] = None,
    extend: Annotated[Path | None, typer.Option(help="A video to continue.")] = None,
    seconds: Annotated[float, typer.Option(help="Seconds to add with --extend.")] = 5.0,
    duration: Annotated[float | None, typer.Option(help="Seconds of video: 5 or 10.")] = None,
    aspect: Annotated[str, typer.Option(help="16:9, 9:16 or 1:1.")] = "16:9",
    mode: Annotated[str, typer.Option(help="std or pro (more steps).")] = "std",
    seed: Annotated[int | None, typer.Option(help="Seed; the same seed gives the same video.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What to steer away from.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Classifier-free guidance scale.")] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (overrides --mode).")] = None,
    n: Annotated[int, typer.Option("--n", help="Candidates to draw.")] = 1,
    model: Annotated[str, typer.Option(help="Model id (see `kinema models`).")] = "builtin",
) -> None:
    """Make a video from a prompt, from images, or by extending a video."""
    from kinema.spec import ExtendVideo, ImageToVideo, TextToVideo

    with clear_errors():
        common: dict[str, Any] = dict(
            model=model,
            prompt=prompt,
            negative_prompt=negative_prompt,
            mode=_mode(mode),
            seed=seed,
            n=n,
            num_inference_steps=steps,
            guidance_scale=guidance,
            aspect_ratio=_aspect(aspect),
            duration=duration,
        )
        for path in (image, image_tail, extend):
            if path is not None and not path.is_file():
                raise fail(f"{path} does not exist; give the path of an existing file")
        request: Any
        if extend is not None:
            if image or image_tail:
                raise fail("--extend cannot be combined with --image/--image-tail; use one of them")
            request = ExtendVideo(video=str(extend), seconds=seconds, **common)
        elif image or image_tail:
            request = ImageToVideo(image=_str(image), image_tail=_str(image_tail), **common)
        else:
            request = TextToVideo(**common)
        _generate(request, output, "generating")


@app.command("image")
def image_command(
    prompt: Annotated[str, typer.Argument(help="What the image shows.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG to write.")] = Path("out/image.png"),
    aspect: Annotated[str, typer.Option(help="16:9, 9:16 or 1:1.")] = "16:9",
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="What to steer away from.")] = None,
    guidance: Annotated[float | None, typer.Option(help="Guidance scale.")] = None,
    n: Annotated[int, typer.Option("--n", help="Candidates to draw.")] = 1,
    model: Annotated[str, typer.Option(help="Model id.")] = "builtin",
) -> None:
    """Make an image (a keyframe) from a prompt."""
    from kinema.spec import TextToImage

    with clear_errors():
        request = TextToImage(
            model=model,
            prompt=prompt,
            negative_prompt=negative_prompt,
            seed=seed,
            n=n,
            guidance_scale=guidance,
            aspect_ratio=_aspect(aspect),
        )
        _generate(request, output, "drawing")


def _aspect(value: str) -> AspectRatio:
    if value not in ("16:9", "9:16", "1:1"):
        raise fail(f"--aspect must be 16:9, 9:16 or 1:1, not {value!r}")
    return value  # type: ignore[return-value]


def _mode(value: str) -> Mode:
    if value not in ("std", "pro"):
        raise fail(f"--mode must be std or pro, not {value!r}")
    return value  # type: ignore[return-value]


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


from kinema.cli import keys as _keys  # noqa: E402, F401  (registers `keys`)
from kinema.cli import models as _models  # noqa: E402  (registers `models`)
from kinema.cli import serve as _serve  # noqa: E402  (registers `serve`)
from kinema.cli import training as _training  # noqa: E402  (registers `eval` and `train`)
from kinema.cli import worker as _worker  # noqa: E402, F401  (registers `worker`)

del _models, _serve, _training
from kinema.cli import accounts as _accounts  # noqa: E402, F401  (registers `accounts`)
