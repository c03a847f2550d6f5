"""Reading and writing the built-in model's weights: fp16 safetensors plus a JSON card.

The card holds the architecture (so a file is self-describing), the training record (steps, clips,
minutes, hardware) and the last measured checker metrics.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from kinema.errors import ModelLoadError
from kinema.models.dit import DiTConfig, VideoDiT

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "builtin.safetensors"


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_model(model: VideoDiT, weights: Path, card: dict[str, Any]) -> None:
    """Write fp16 weights and the card next to them, atomically (write, then rename)."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}
    tmp = weights.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(weights)
    write_card(weights, {**card, "config": dataclasses.asdict(model.config)})


def write_card(weights: Path, card: dict[str, Any]) -> None:
    """Replace the JSON card of `weights` atomically."""
    tmp = weights.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(card_path(weights))


def read_card(weights: Path) -> dict[str, Any]:
    path = card_path(weights)
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing; the built-in weights need their JSON card beside them")
    card: dict[str, Any] = json.loads(path.read_text())
    return card


def load_model(weights: Path = DEFAULT_WEIGHTS, *, dtype: torch.dtype = torch.float32) -> VideoDiT:
    """The built-in model from a safetensors file and its card, in eval mode."""
    if not weights.is_file():
        raise ModelLoadError(
            f"built-in weights not found at {weights}; run `kinema train builtin` to create them"
        )
    raw = read_card(weights)["config"]
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    config = DiTConfig(**fields)
    model = VideoDiT(config)
    state = load_file(str(weights))
    try:
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    except RuntimeError as exc:
        raise ModelLoadError(f"{weights} does not match its card's architecture: {exc}") from exc
    return model.to(dtype).eval()
