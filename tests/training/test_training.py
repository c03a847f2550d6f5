from pathlib import Path

import numpy as np
import torch

from kinema.backends.builtin_weights import load_model, read_card
from kinema.training.builtin import TrainConfig, Trainer
from kinema.training.data import make_batch
from kinema.world.scene import held_out_triples

TINY = TrainConfig(preset="tiny", batch_size=2, warmup_steps=2, checkpoint_minutes=100.0)


def trainer(tmp_path: Path) -> Trainer:
    return Trainer(
        TINY, state_path=tmp_path / "state.pt", weights_path=tmp_path / "w.safetensors", log=lambda line: None
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
