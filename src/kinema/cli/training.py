"""`kinema train builtin` and `kinema eval builtin`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from kinema.cli.main import build_engine, clear_errors, console, eval_app, stop_signals, train_app
from kinema.settings import Settings


@train_app.command("builtin")
def train_builtin(
    minutes: Annotated[float, typer.Option(help="Wall-clock budget for this run.")] = 30.0,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last checkpoint or the shipped weights.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the data stream.")] = 0,
    weights: Annotated[Path | None, typer.Option(help="Where to write the EMA weights.")] = None,
    state: Annotated[Path, typer.Option(help="Full training state (for exact resume).")] = Path(
        ".cache/train/builtin/state.pt"
    ),
    checkpoint_minutes: Annotated[float, typer.Option(help="Minutes between checkpoints.")] = 10.0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto (a GPU if there is one).")] = "cpu",
    batch_size: Annotated[int, typer.Option(help="Clips per optimiser step.")] = 16,
    data_workers: Annotated[
        int, typer.Option(help="Processes rendering clips ahead (0: one thread); a GPU needs many.")
    ] = 0,
    preset: Annotated[str, typer.Option(help="Architecture of a fresh run (kinema.models.dit.PRESETS).")] = (
        "builtin-s"
    ),
    cooldown_steps: Annotated[
        int | None,
        typer.Option(help="Decay the learning rate linearly to zero over this many steps, then stop."),
    ] = None,
    object_weight: Annotated[
        float,
        typer.Option(help="Extra loss weight of the pixels on and around the object (0: plain mean)."),
    ] = 4.0,
) -> None:
    """Train the built-in model on the rendered world, checkpointing as it goes."""
    import torch

    from kinema.backends.builtin_weights import DEFAULT_WEIGHTS
    from kinema.training.builtin import TrainConfig, Trainer

    settings = Settings()
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    target = weights or settings.builtin_weights or DEFAULT_WEIGHTS
    with clear_errors():
        if not resume and (target.exists() or state.exists()):
            console.print(
                f"[yellow]note:[/yellow] {target} or {state} exists; pass --resume to continue it, "
                "or remove them to start over"
            )
            raise typer.Exit(2)
        config = TrainConfig(
            seed=seed,
            checkpoint_minutes=checkpoint_minutes,
            device=device,
            batch_size=batch_size,
            data_workers=data_workers,
            preset=preset,
            object_weight=object_weight,
        )
        trainer = Trainer(  # checks the preset, batch size, workers and device
            config,
            state_path=state,
            weights_path=target,
            log=lambda line: console.print(line, highlight=False),
        )
        if resume:
            console.print(trainer.resume())
        if cooldown_steps is not None:
            console.print(trainer.start_cooldown(cooldown_steps))
        stopping = stop_signals(  # the step in hand ends with a checkpoint; a second signal kills it
            lambda name: console.print(
                f"[yellow]{name}:[/yellow] stopping after this step and saving a checkpoint "
                "(send it again to stop at once)"
            )
        )
        with stopping as stop:
            trainer.run(minutes, should_stop=stop.is_set)
    typer.echo(str(target))


@eval_app.command("builtin")
def eval_builtin(
    clips: Annotated[int, typer.Option(help="Text-to-video clips to grade.")] = 200,
    i2v_clips: Annotated[int, typer.Option(help="Image-to-video clips to grade.")] = 40,
    long_seconds: Annotated[
        float, typer.Option(help="Also grade an extension chain this long (0: skip).")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of prompts and noise.")] = 0,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (default: the model's std).")] = None,
    guidance: Annotated[float | None, typer.Option(help="Guidance scale (default: the model's).")] = None,
    output: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
    record: Annotated[bool, typer.Option(help="Store the report in the weights' JSON card.")] = False,
) -> None:
    """Grade the built-in model with the analytic checker: colour, shape, motion, background."""
    from kinema.training.evaluate import EvalConfig, evaluate

    with clear_errors():
        engine, _ = build_engine(Settings())
        config = EvalConfig(
            clips=clips,
            i2v_clips=i2v_clips,
            long_seconds=long_seconds,
            seed=seed,
            steps=steps,
            guidance=guidance,
        )
        report = evaluate(engine, config, log=lambda line: console.print(line, highlight=False))
    text = json.dumps(report.as_dict(), indent=2)
    if record:
        from kinema.backends.builtin_weights import DEFAULT_WEIGHTS, read_card, write_card

        weights = Settings().builtin_weights or DEFAULT_WEIGHTS
        card = read_card(weights)
        steps = card.get("training", {}).get("steps")
        card["eval"] = {"steps": steps, "config": dataclasses.asdict(config), **report.as_dict()}
        write_card(weights, card)
    if output:
        output.write_text(text + "\n")
    typer.echo(text)
