"""The built-in model's training: seeded, time-budgeted and resumable.

`kinema train builtin --minutes N [--resume]` runs this loop. Every `checkpoint_minutes` it writes the
full training state (model, EMA, optimiser, step) to a local state file and the EMA weights in fp16 to
the package's weights file, so a killed run loses at most one interval and the next session resumes.
Data for step k comes from a generator seeded by (seed, k): a resumed run sees the same clips. On a GPU
(`device="cuda"`) the matmuls run in bf16, the noise is drawn on the device (seeded the same way) and
`data_workers` processes render the upcoming steps' clips, in step order, into shared memory.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import platform
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from kinema.backends.builtin_weights import DEFAULT_WEIGHTS, load_model, read_card, save_model
from kinema.errors import InvalidRequest
from kinema.models.allocator import reuse_freed_memory
from kinema.models.dit import PRESETS, VideoDiT
from kinema.sampling.flow import add_noise, sample_training_t
from kinema.training.data import Batch, make_batch
from kinema.world.captions import VOCAB
from kinema.world.scene import CANVASES

DEFAULT_STATE = Path(".cache/train/builtin/state.pt")


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "builtin-s"
    batch_size: int = 16
    num_frames: int = 16
    still_fraction: float = 0.1  # share of steps that train text-to-image on single frames
    lr: float = 8e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    t_mean: float = 0.5  # logit-normal noise levels, leaning toward high noise
    t_std: float = 1.0
    t_floor: float = 0.5  # x-loss weight 1/max(t, floor)^2: a v-loss that does not starve high noise
    # Extra weight of the pixels on and around the object (object_mask) in each clip's loss: the flat
    # background is most of every frame and easy, the object's shape and position are what is graded.
    object_weight: float = 4.0
    seed: int = 0
    checkpoint_minutes: float = 10.0
    bf16: bool | None = None  # autocast matmuls to bfloat16; None: on GPUs, and CPUs that do bf16 natively
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto" (a GPU if there is one)
    data_workers: int = 0  # processes rendering batches ahead (0: one thread beside the training loop)


def native_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AVX512-BF16 or AMX), where autocast pays off.

    Elsewhere bf16 is emulated: measured 13.4 s vs 1.7 s per step on an AVX2-only EPYC (1 thread).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def object_mask(clips: torch.Tensor, *, margin: int = 1, tolerance: float = 0.05) -> torch.Tensor:
    """1 where a pixel of the clean clips (B, 3, T, H, W) in [-1, 1] differs from its clip's background,
    grown by `margin` pixels, else 0; (B, 1, T, H, W). The background is flat and covers most of a frame,
    so its colour is the per-channel median of the first frame."""
    background = clips[:, :, 0].flatten(2).median(dim=2).values  # (B, 3)
    differs = (clips - background[:, :, None, None, None]).abs().amax(dim=1, keepdim=True) > tolerance
    size = 2 * margin + 1
    return F.max_pool3d(differs.float(), (1, size, size), stride=1, padding=(0, margin, margin))


def loss_fn(
    model: VideoDiT,
    clips: torch.Tensor,
    given: torch.Tensor,
    ids: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    t_floor: float,
    object_weight: float = 0.0,
) -> torch.Tensor:
    """Weighted x-prediction loss over the frames that are not given: per clip, the weighted mean of the
    squared error, each pixel weighing 1 + object_weight on and around the object, 1 elsewhere; each
    clip's mean weighs 1/max(t, t_floor)^2."""
    x_t = add_noise(clips, noise, t)
    x_in = given * clips + (1.0 - given) * x_t  # given frames enter clean
    mask = given.expand(-1, 1, -1, clips.shape[3], clips.shape[4])
    x0_hat = model(x_in, mask, t, ids)
    weight = 1.0 / t.clamp(min=t_floor) ** 2  # (B,)
    pixels = (1.0 - given).expand(mask.shape)  # (B, 1, T, H, W): the frames to predict
    if object_weight:
        pixels = pixels * (1.0 + object_weight * object_mask(clips))
    sq = ((x0_hat - clips) ** 2).mean(dim=1, keepdim=True)  # (B, 1, T, H, W)
    err = (sq * pixels).sum(dim=(1, 2, 3, 4)) / pixels.sum(dim=(1, 2, 3, 4)).clamp(min=1)
    return (weight * err).mean()


def pick_device(name: str) -> torch.device:
    """The torch device `name` asks for; "auto" is the first GPU if there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidRequest(f"unknown training device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequest(f"device {name!r} asked for, but this torch sees no GPU; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise InvalidRequest(f"training runs on cpu or cuda, not {name!r}")
    return device


def render_step(config: TrainConfig, step: int) -> tuple[Batch, torch.Tensor, torch.Generator]:
    """The clips and noise levels of `step`, a function of (seed, step) alone, and the CPU generator that
    drew the levels (a CPU run draws the noise from it next)."""
    rng = np.random.default_rng([config.seed, step])
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
    aspect = list(CANVASES)[step % len(CANVASES)]
    still = rng.random() < config.still_fraction
    frames = config.num_frames // 2 if still else config.num_frames
    batch = make_batch(rng, size=config.batch_size, aspect=aspect, num_frames=frames, still=still)
    t = sample_training_t(config.batch_size, gen, mean=config.t_mean, std=config.t_std)
    return batch, t, gen


def step_data(config: TrainConfig, step: int, *, with_noise: bool) -> dict[str, torch.Tensor]:
    """Step k's batch as tensors; `with_noise` draws the noise too, on the CPU (else the device does)."""
    batch, t, gen = render_step(config, step)
    data = {
        "clips": torch.from_numpy(batch.clips),
        "given": torch.from_numpy(batch.given),
        "ids": torch.from_numpy(batch.ids),
        "t": t,
    }
    if with_noise:
        data["noise"] = torch.randn(batch.clips.shape, generator=gen)
    return data


class _Steps(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Step k's batch, for a DataLoader whose worker processes render ahead."""

    def __init__(self, config: TrainConfig, *, with_noise: bool) -> None:
        self.config, self.with_noise = config, with_noise

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        return step_data(self.config, step, with_noise=self.with_noise)


class _From(torch.utils.data.Sampler[int]):
    def __init__(self, first: int) -> None:
        self.first = first

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.first)


class Trainer:
    """Holds model, EMA and optimiser; `run(minutes)` trains and checkpoints until the budget ends."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        state_path: Path = DEFAULT_STATE,
        weights_path: Path = DEFAULT_WEIGHTS,
        log: Callable[[str], None] = print,
    ) -> None:
        if config.preset not in PRESETS:
            raise InvalidRequest(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
        if config.batch_size < 1:
            raise InvalidRequest(f"batch_size must be at least 1, not {config.batch_size}")
        if not config.object_weight >= 0:
            raise InvalidRequest(f"object_weight must be 0 or more, not {config.object_weight}")
        if config.data_workers < 0:
            raise InvalidRequest(f"data_workers must be 0 or more, not {config.data_workers}")
        self.device = pick_device(config.device)
        if self.device.type == "cpu":
            reuse_freed_memory()  # each step's activations come back without page faults
        if config.bf16 is None:
            config = dataclasses.replace(config, bf16=self.device.type == "cuda" or native_bf16())
        self.config = config
        self.state_path = state_path
        self.weights_path = weights_path
        self.log = log
        model_config = PRESETS[config.preset]
        if model_config.vocab_size != len(VOCAB):
            raise ValueError(f"preset vocab_size {model_config.vocab_size} != world vocabulary {len(VOCAB)}")
        with torch.random.fork_rng(devices=[]):  # a fresh run starts from the seed's weights
            torch.manual_seed(config.seed)
            self.model = VideoDiT(model_config).to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=(0.9, 0.99), weight_decay=config.weight_decay
        )
        self.step = 0
        self.clips_seen = 0
        self.minutes = 0.0
        self.history: list[dict[str, Any]] = []
        self.warm_from = 0  # the learning rate warms up over warmup_steps from this step
        # {"start", "steps"} while the rate decays to zero, after which the run ends (start_cooldown)
        self.cooldown: dict[str, int] | None = None
        # [{"step", "object_weight"}]: where the loss's object weight took the value that follows, so the
        # logged losses before and after a change are not read as one curve
        self.loss_changes: list[dict[str, float]] = []

    # --- state -------------------------------------------------------------------------------------
    def resume(self) -> str:
        """Continue from the full state file if present, else from the shipped EMA weights."""
        try:
            return self._resume()
        except RuntimeError as error:  # load_state_dict: another architecture
            raise InvalidRequest(
                f"the checkpoint does not fit preset {self.config.preset!r} ({str(error).splitlines()[0]}); "
                "resume with the preset it was trained with, or start afresh with other --weights and --state"
            ) from None

    def _resume(self) -> str:
        if self.state_path.is_file():
            state = torch.load(self.state_path, weights_only=False, map_location=self.device)
            self.model.load_state_dict(state["model"])
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.step, self.clips_seen, self.minutes = state["step"], state["clips_seen"], state["minutes"]
            self.history = state["history"]
            self.warm_from, self.cooldown = state.get("warm_from", 0), state.get("cooldown")
            self.loss_changes = state.get("loss_changes", [])
            return f"resumed full state from {self.state_path} at step {self.step}"
        if self.weights_path.is_file():
            shipped = load_model(self.weights_path)
            self.model.load_state_dict(shipped.state_dict())
            self.ema.load_state_dict(shipped.state_dict())
            card = read_card(self.weights_path)
            record = card.get("training", {})
            self.step, self.clips_seen = record.get("steps", 0), record.get("clips_seen", 0)
            self.minutes, self.history = record.get("minutes", 0.0), record.get("history", [])
            self.loss_changes = record.get("loss_changes", [])
            self.warm_from = self.step  # a fresh optimiser warms up again
            return (
                f"resumed from shipped EMA weights {self.weights_path} at step {self.step} (fresh optimiser)"
            )
        return "no checkpoint found; starting from scratch"

    def save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "clips_seen": self.clips_seen,
            "minutes": self.minutes,
            "history": self.history,
            "config": asdict(self.config),
            "warm_from": self.warm_from,
            "cooldown": self.cooldown,
            "loss_changes": self.loss_changes,
        }
        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.state_path)
        card: dict[str, Any] = {}
        if self.weights_path.is_file():
            card = {k: v for k, v in read_card(self.weights_path).items() if k != "config"}
        card["training"] = {
            "steps": self.step,
            "clips_seen": self.clips_seen,
            "minutes": round(self.minutes, 2),
            "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
            "config": asdict(self.config),
            "cooldown": self.cooldown,
            "loss_changes": self.loss_changes,
            "history": self.history,
        }
        save_model(self.ema, self.weights_path, card)

    # --- learning rate ---------------------------------------------------------------------------
    def start_cooldown(self, steps: int) -> str:
        """Decay the learning rate linearly to zero over the next `steps` steps, then end the run (the
        decay phase of a warmup-stable-decay schedule). A cooldown already under way goes on instead."""
        if steps < 1:
            raise InvalidRequest(f"a cooldown needs at least 1 step, not {steps}")
        if self.cooldown is not None and not self.cooled_down():
            start = self.cooldown["start"]
            end = start + self.cooldown["steps"]
            return f"continuing the cooldown from step {start} to {end} ({end - self.step} left)"
        self.cooldown = {"start": self.step, "steps": steps}
        return f"cooling down: the learning rate falls to zero from step {self.step} to {self.step + steps}"

    def cooled_down(self) -> bool:
        return self.cooldown is not None and self.step >= self.cooldown["start"] + self.cooldown["steps"]

    def lr_at(self, step: int) -> float:
        """Warmup from `warm_from`, then constant; during a cooldown, falling linearly toward zero."""
        rate = self.config.lr * min(1.0, (step - self.warm_from + 1) / self.config.warmup_steps)
        if self.cooldown is not None:
            rate *= max(0.0, 1.0 - (step - self.cooldown["start"]) / self.cooldown["steps"])
        return rate

    # --- loop --------------------------------------------------------------------------------------
    def batch_for(self, step: int) -> dict[str, torch.Tensor]:
        """The data of `step`: a function of (seed, step) alone, so a resumed run sees the same clips.
        On the CPU the noise comes along; elsewhere `train_step` draws it on the device."""
        return step_data(self.config, step, with_noise=self.device.type == "cpu")

    def _noise(self, step: int, clips: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator(self.device).manual_seed(self.config.seed * 1_000_003 + step)
        return torch.randn(clips.shape, generator=gen, device=self.device)

    def train_step(self, data: dict[str, torch.Tensor] | None = None) -> float:
        c = self.config
        found = {
            k: v.to(self.device, non_blocking=True) for k, v in (data or self.batch_for(self.step)).items()
        }
        noise = found["noise"] if "noise" in found else self._noise(self.step, found["clips"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        # bf16 matmuls run ~3x faster than fp32 on CPUs with AVX512-BF16/AMX (and GPUs); weights and the
        # loss stay fp32.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(c.bf16)):
            loss = loss_fn(
                self.model,
                found["clips"],
                found["given"],
                found["ids"],
                found["t"],
                noise,
                c.t_floor,
                c.object_weight,
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        self.clips_seen += c.batch_size
        return float(loss.detach())

    def _batches(self) -> Generator[dict[str, torch.Tensor]]:
        """The batches from the current step on: rendered by worker processes, or a thread ahead."""
        if self.config.data_workers > 0:
            loader = torch.utils.data.DataLoader(
                _Steps(self.config, with_noise=self.device.type == "cpu"),
                batch_size=None,
                sampler=_From(self.step),
                num_workers=self.config.data_workers,
                pin_memory=self.device.type == "cuda",
                prefetch_factor=4,
                persistent_workers=False,
            )
            yield from loader
            return
        # Render the next batch on a second thread while this one trains (NumPy releases the GIL).
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            step = self.step
            upcoming = prefetch.submit(self.batch_for, step)
            try:
                while True:
                    step += 1
                    data, upcoming = upcoming.result(), prefetch.submit(self.batch_for, step)
                    yield data
            finally:
                upcoming.cancel()

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = min(self.config.ema_decay, (1 + self.step) / (10 + self.step))
        for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
            e.lerp_(p, 1.0 - decay)

    def run(
        self,
        minutes: float,
        *,
        max_steps: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Train for `minutes` of wall time (or `max_steps`), checkpointing on the way and at the end.

        `should_stop` is asked before each step; when it says yes (the CLI's SIGINT / SIGTERM handler),
        the run ends after the step in hand with the same final checkpoint as at the budget's end. A
        cooldown (`start_cooldown`) ends the run at its last step; a run that starts after a finished
        cooldown warms the learning rate up again from the current step.
        """
        if self.cooled_down():
            self.log(f"the cooldown ended at step {self.step}; warming the learning rate up again")
            self.cooldown, self.warm_from = None, self.step
        # Runs before the record began used no object weight; a run from scratch starts the record.
        was = self.loss_changes[-1]["object_weight"] if self.loss_changes else (0.0 if self.step else None)
        if was != self.config.object_weight:
            self.loss_changes.append({"step": self.step, "object_weight": self.config.object_weight})
        self.model.train()
        start = last_save = time.monotonic()
        losses: list[float] = []
        batches = self._batches()
        while (
            (time.monotonic() - start) / 60 < minutes
            and (max_steps is None or max_steps > 0)
            and not should_stop()
            and not self.cooled_down()
        ):
            tick = time.monotonic()
            losses.append(self.train_step(next(batches)))
            self.minutes += (time.monotonic() - tick) / 60
            if max_steps is not None:
                max_steps -= 1
            if self.step % 50 == 0:
                avg = float(np.mean(losses[-50:]))
                self.history.append(
                    {
                        "step": self.step,
                        "minutes": round(self.minutes, 2),
                        "loss": round(avg, 5),
                        "lr": float(f"{self.lr_at(self.step - 1):.3g}"),
                    }
                )
                self.log(json.dumps(self.history[-1]))
            if (time.monotonic() - last_save) / 60 >= self.config.checkpoint_minutes:
                self.save()
                last_save = time.monotonic()
                self.log(f"checkpoint at step {self.step}")
        batches.close()
        self.save()
        if losses:
            self.log(
                f"stopped at step {self.step}; loss {losses[-1]:.4f} last, "
                f"{math.fsum(losses) / len(losses):.4f} mean"
            )
