import dataclasses
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch

from kinema.backends.builtin_weights import load_model, read_card
from kinema.errors import InvalidRequest
from kinema.models.dit import VideoDiT
from kinema.training.builtin import TrainConfig, Trainer, loss_fn, object_mask
from kinema.training.data import make_batch
from kinema.world.scene import held_out_triples

TINY = TrainConfig(preset="tiny", batch_size=2, warmup_steps=2, checkpoint_minutes=100.0)


def trainer(tmp_path: Path, config: TrainConfig = TINY) -> Trainer:
    return Trainer(
        config,
        state_path=tmp_path / "state.pt",
        weights_path=tmp_path / "w.safetensors",
        log=lambda line: None,
    )


def test_batches_hold_clips_masks_and_captions() -> None:
    batch = make_batch(np.random.default_rng(0), size=32, aspect="9:16", num_frames=16)
    assert batch.clips.shape == (32, 3, 16, 48, 27)
    assert batch.clips.min() >= -1.0 and batch.clips.max() <= 1.0
    assert set(np.unique(batch.given)) <= {0.0, 1.0}
    assert (batch.given.sum(axis=(1, 2, 3, 4)) == 0).any()  # some text-to-video samples
    assert batch.ids.shape == (32, 16)


def test_still_batches_repeat_one_frame_and_give_nothing() -> None:
    batch = make_batch(np.random.default_rng(1), size=4, aspect="1:1", num_frames=8, still=True)
    assert np.array_equal(batch.clips[:, :, 0], batch.clips[:, :, 7])
    assert batch.given.sum() == 0


def test_held_out_triples_never_appear_in_training_captions() -> None:
    held = held_out_triples()
    assert 8 <= len(held) <= 32
    from kinema.world.captions import parse

    for seed in range(20):
        batch = make_batch(np.random.default_rng(seed), size=16, aspect="16:9", num_frames=8)
        for text in batch.captions:
            p = parse(text)
            if text:
                assert (p.shape, p.colour, p.motion) not in held


def test_checkpoint_then_resume_continues_exactly(tmp_path: Path) -> None:
    first = trainer(tmp_path)
    first.run(minutes=10, max_steps=3)
    assert first.step == 3 and (tmp_path / "w.safetensors").is_file()
    resumed = trainer(tmp_path)
    assert "resumed full state" in resumed.resume()
    first.run(minutes=10, max_steps=2)
    resumed.run(minutes=10, max_steps=2)
    for a, b in zip(first.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    card = read_card(tmp_path / "w.safetensors")
    assert card["training"]["steps"] == 5 and card["config"]["width"] == 32


def test_resume_from_shipped_weights_alone(tmp_path: Path) -> None:
    first = trainer(tmp_path)
    first.run(minutes=10, max_steps=2)
    (tmp_path / "state.pt").unlink()
    again = trainer(tmp_path)
    assert "shipped EMA weights" in again.resume()
    assert again.step == 2
    ema = load_model(tmp_path / "w.safetensors")
    for a, b in zip(again.model.parameters(), ema.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_should_stop_ends_the_run_after_the_step_in_hand_with_a_checkpoint(tmp_path: Path) -> None:
    run = trainer(tmp_path)
    run.run(minutes=10, max_steps=50, should_stop=lambda: run.step >= 2)
    assert run.step == 2
    again = trainer(tmp_path)
    assert "resumed full state" in again.resume() and again.step == 2


def test_sigterm_stops_kinema_train_with_a_checkpoint_and_exit_zero(tmp_path: Path) -> None:
    """A supervisor's SIGTERM (or Ctrl-C) keeps the steps since the last checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    weights, state = tmp_path / "w.safetensors", tmp_path / "state.pt"
    command = [str(Path(sys.executable).with_name("kinema")), "train", "builtin", "--preset", "tiny"]
    command += ["--batch-size", "2"]
    command += ["--minutes", "10", "--weights", str(weights), "--state", str(state)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the first progress line (step 50) shows training is under way
        line = process.stdout.readline()
        lines.append(line)
        if not line or '"step"' in line:
            break
    assert '"step"' in lines[-1], "".join(lines)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, "".join(lines) + out
    assert "SIGTERM" in out and "stopped at step" in out
    steps = read_card(weights)["training"]["steps"]
    assert steps >= 50
    assert torch.load(state, weights_only=False)["step"] == steps


def test_worker_processes_render_the_same_steps_as_the_thread(tmp_path: Path) -> None:
    """A GPU run renders ahead in processes; on the CPU that must train exactly as the one thread does."""
    alone = trainer(tmp_path / "thread")
    alone.run(minutes=10, max_steps=3)
    workers = trainer(tmp_path / "workers", dataclasses.replace(TINY, data_workers=2))
    workers.run(minutes=10, max_steps=3)
    assert workers.step == 3
    for a, b in zip(alone.model.parameters(), workers.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_device_that_is_not_there_is_refused_with_the_fix(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="this torch sees no GPU; use --device cpu"):
        trainer(tmp_path, dataclasses.replace(TINY, device="cuda"))
    with pytest.raises(ValueError, match="unknown training device 'gpu0'"):
        trainer(tmp_path, dataclasses.replace(TINY, device="gpu0"))
    with pytest.raises(ValueError, match="data_workers must be 0 or more"):
        trainer(tmp_path, dataclasses.replace(TINY, data_workers=-1))
    assert trainer(tmp_path, dataclasses.replace(TINY, device="auto")).device.type == "cpu"


def test_the_gpu_sitting_script_trains_resumes_and_leaves_weights_card_and_log(tmp_path: Path) -> None:
    """scripts/gpu_train_builtin.sh is what a lent GPU runs; here it runs the same code on the CPU."""
    import json
    import os
    import subprocess
    import sys

    script = Path(__file__).parents[2] / "scripts" / "gpu_train_builtin.sh"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OUT": str(tmp_path),
        "KINEMA_GPU_DEVICE": "cpu",
        "KINEMA_GPU_WORKERS": "1",
        "KINEMA_GPU_WEIGHTS": str(tmp_path / "tiny.safetensors"),
    }
    runs = [
        subprocess.run(
            [str(script), "0.02", "tiny", "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        for _ in range(2)
    ]
    assert "fresh tiny run, seed 0" in runs[0].stdout
    assert "resumed from shipped EMA weights" in runs[1].stdout
    last = json.loads(runs[1].stdout.strip().splitlines()[-1])
    assert last["steps"] >= 1 and last["total_steps"] > last["steps"]
    assert read_card(tmp_path / "tiny.safetensors")["training"]["steps"] == last["total_steps"]
    assert (tmp_path / "train.log").read_text().strip() == runs[1].stdout.strip()
    assert not (tmp_path / "state.pt").exists()


def learning_rates(run: Trainer, steps: int) -> list[float]:
    """The rate each of the next steps trains with (the run may end sooner)."""
    seen: list[float] = []
    step = run.train_step

    def recording(data: dict[str, torch.Tensor] | None = None) -> float:
        loss = step(data)
        seen.append(run.optimizer.param_groups[0]["lr"])
        return loss

    run.train_step = recording  # type: ignore[method-assign]
    run.run(minutes=10, max_steps=steps)
    run.train_step = step  # type: ignore[method-assign]
    return seen


def test_a_cooldown_decays_the_rate_to_zero_then_ends_the_run(tmp_path: Path) -> None:
    run = trainer(tmp_path)
    lr = TINY.lr
    assert learning_rates(run, 3) == pytest.approx([lr / 2, lr, lr])  # warmup over 2 steps
    assert "from step 3 to 7" in run.start_cooldown(4)
    assert learning_rates(run, 50) == pytest.approx([lr, 0.75 * lr, 0.5 * lr, 0.25 * lr])
    assert run.step == 7 and run.cooled_down()
    assert read_card(tmp_path / "w.safetensors")["training"]["cooldown"] == {"start": 3, "steps": 4}
    with pytest.raises(InvalidRequest, match="at least 1 step"):
        run.start_cooldown(0)


def test_a_resumed_cooldown_goes_on_and_a_run_after_it_warms_up_again(tmp_path: Path) -> None:
    run = trainer(tmp_path)
    run.run(minutes=10, max_steps=2)
    run.start_cooldown(4)
    run.run(minutes=10, max_steps=2)  # stopped half way, as by the budget or a signal
    resumed = trainer(tmp_path)
    resumed.resume()
    assert "continuing the cooldown from step 2 to 6 (2 left)" in resumed.start_cooldown(10)
    lr = TINY.lr
    assert learning_rates(resumed, 50) == pytest.approx([0.5 * lr, 0.25 * lr])
    again = trainer(tmp_path)
    again.resume()
    assert learning_rates(again, 3) == pytest.approx([lr / 2, lr, lr])  # warmup from step 6
    assert again.step == 9 and again.cooldown is None


def test_resuming_shipped_weights_with_a_fresh_optimiser_warms_up_again(tmp_path: Path) -> None:
    first = trainer(tmp_path)
    first.run(minutes=10, max_steps=3)
    (tmp_path / "state.pt").unlink()
    again = trainer(tmp_path)
    again.resume()
    assert learning_rates(again, 2) == pytest.approx([TINY.lr / 2, TINY.lr])


def test_the_object_mask_covers_the_object_and_a_rim_not_the_background() -> None:
    from kinema.world.captions import parse
    from kinema.world.scene import BACKGROUNDS

    batch = make_batch(np.random.default_rng(3), size=8, aspect="1:1", num_frames=8)
    clips = torch.from_numpy(batch.clips)
    core, grown = object_mask(clips, margin=0), object_mask(clips)
    share = core.mean(dim=(1, 2, 3, 4))
    assert ((share > 0.005) & (share < 0.3)).all()  # every clip has an object, far smaller than a frame
    assert (grown >= core).all() and grown.sum() > core.sum()
    for i, text in enumerate(batch.captions):
        if text:  # outside the mask, exactly the background the caption names
            rgb = torch.tensor(BACKGROUNDS[parse(text).background or ""], dtype=torch.float32) / 127.5 - 1
            outside = (grown[i, 0] == 0)[None].expand(3, -1, -1, -1)
            expected = rgb[:, None, None, None].expand_as(clips[i])
            assert torch.allclose(clips[i][outside], expected[outside], atol=1e-5)


class Echo(torch.nn.Module):
    """Predicts a fixed clip whatever it is given, so the loss is a known function of the error."""

    def __init__(self, prediction: torch.Tensor) -> None:
        super().__init__()
        self.prediction = prediction

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        return self.prediction


def test_the_object_weight_counts_errors_on_the_object_more_than_on_the_background() -> None:
    batch = make_batch(np.random.default_rng(4), size=2, aspect="16:9", num_frames=8)
    clips, given = torch.from_numpy(batch.clips), torch.zeros(2, 1, 8, 1, 1)
    ids, t, noise = torch.from_numpy(batch.ids), torch.ones(2), torch.zeros_like(clips)
    on = object_mask(clips, margin=0).bool().expand_as(clips)

    def loss(error_on_object: bool, weight: float) -> float:
        wrong = clips.clone()
        where = on if error_on_object else ~object_mask(clips).bool().expand_as(clips)
        pixels = int(where.sum())
        wrong[where] += 0.5 * (clips.numel() / pixels) ** 0.5  # the same total squared error either way
        model = cast(VideoDiT, Echo(wrong))
        return float(loss_fn(model, clips, given, ids, t, noise, 0.5, weight))

    assert loss(True, 0.0) == pytest.approx(loss(False, 0.0), rel=1e-4)  # a plain mean: no preference
    assert loss(True, 4.0) > 2.5 * loss(False, 4.0)
    exact = float(loss_fn(cast(VideoDiT, Echo(clips)), clips, given, ids, t, noise, 0.5, 4.0))
    assert exact == 0.0


def test_a_change_of_object_weight_is_recorded_where_it_happened(tmp_path: Path) -> None:
    plain = trainer(tmp_path, dataclasses.replace(TINY, object_weight=0.0))
    plain.run(minutes=10, max_steps=2)
    assert plain.loss_changes == [{"step": 0, "object_weight": 0.0}]
    weighted = trainer(tmp_path, dataclasses.replace(TINY, object_weight=4.0))
    weighted.resume()
    weighted.run(minutes=10, max_steps=2)
    weighted.run(minutes=10, max_steps=1)  # the same weight again: nothing new
    changes = [{"step": 0, "object_weight": 0.0}, {"step": 2, "object_weight": 4.0}]
    assert read_card(tmp_path / "w.safetensors")["training"]["loss_changes"] == changes
    with pytest.raises(InvalidRequest, match="object_weight must be 0 or more"):
        trainer(tmp_path, dataclasses.replace(TINY, object_weight=-1.0))
