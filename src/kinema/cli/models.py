"""`kinema models`: list the served models, and `kinema models make-tiny` to try a family offline.

Listing shows each model's capabilities; a model that cannot be loaded is named with the reason on
stderr and never hides the others. `make-tiny` writes a tiny random-initialised model folder and adds
it to a models file, so the whole open-model path runs on a CPU with no download.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kinema.cli.main import app, build_engine, clear_errors, console, fail
from kinema.settings import Settings

models_app = typer.Typer(help="List served models; make tiny ones to try offline.")
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List served models and what each can do."""
    if ctx.invoked_subcommand is not None:
        return
    with clear_errors():
        _, registry = build_engine(Settings())
        listing = registry.status()
    for status in listing:
        if status.error:
            console.print(
                f"[yellow]unavailable:[/yellow] {status.id} ({status.family}): {status.error}", soft_wrap=True
            )
    caps = [s.capabilities for s in listing if s.capabilities is not None]
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in caps], indent=2))
        return
    table = Table(
        "model", "family", "can do", "canvases (HxW)", "fps", "frames/segment", "steps std/pro", "about"
    )
    for c in caps:
        canvases = ", ".join(f"{a} {h}x{w}" for a, (h, w) in c.canvases.items())
        table.add_row(
            c.model,
            c.family,
            ", ".join(sorted(c.kinds)),
            canvases,
            str(c.fps),
            str(c.max_frames),
            f"{c.steps['std']}/{c.steps['pro']}",
            c.description,
        )
    Console().print(table)


@models_app.command("make-tiny")
def make_tiny(
    family: Annotated[str, typer.Argument(help="wan, ltx, cogvideox, kolors, skyreels or hunyuanvideo.")],
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the tiny model to.")],
    model_id: Annotated[str | None, typer.Option("--id", help="Model id (default tiny-FAMILY).")] = None,
    variant: Annotated[
        str | None,
        typer.Option(
            help="wan: ti2v (default), t2v, i2v, flf2v; cogvideox: t2v, i2v; hunyuanvideo: t2v, i2v, i2v-33ch"
        ),
    ] = None,
    models_file: Annotated[
        Path | None, typer.Option(help="Models file to add it to (default: models.toml beside OUT_DIR).")
    ] = None,
) -> None:
    """Write a tiny random-initialised model (no download) and add it to a models file."""
    from kinema.backends.models_file import add_model
    from kinema.backends.registry import ModelEntry, families

    with clear_errors():
        found = families()
        cls: Any = found[family].load() if family in found else None
        if cls is None or not hasattr(cls, "make_tiny"):
            tiny = sorted(name for name, ep in found.items() if hasattr(ep.load(), "make_tiny"))
            raise fail(f"family {family!r} has no tiny variant; pick one of {', '.join(tiny)}")
        cls(f"tiny-{family}", weights=str(out_dir))  # fails early, in one line, without the extra
        if out_dir.exists() and any(out_dir.iterdir()):
            raise fail(f"{out_dir} is not empty; give a new folder")
        options = cls.make_tiny(out_dir, variant=variant)
        entry = ModelEntry(
            model_id or f"tiny-{family}", family, {"weights": str(out_dir.resolve()), **options}
        )
        target = models_file or out_dir.resolve().parent / "models.toml"
        add_model(target, entry)
    typer.echo(f"wrote {out_dir} and added {entry.id!r} to {target}")
    typer.echo(f'try it:  KINEMA_MODELS_FILE={target} kinema generate --model {entry.id} "a red ball"')
