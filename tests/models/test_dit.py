import pytest
import torch

from kinema.models.dit import PRESETS, VideoDiT
from kinema.world.captions import VOCAB


def tiny_inputs(batch: int = 2, frames: int = 16, height: int = 27, width: int = 48, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, frames, height, width, generator=gen)
    mask = torch.zeros(batch, 1, frames, height, width)
    mask[:, :, 0] = 1.0
    t = torch.rand(batch, generator=gen)
    ids = torch.randint(2, len(VOCAB), (batch, 16), generator=gen)
    ids[:, 10:] = 0
    return x, mask, t, ids


def trained_like(model: VideoDiT) -> VideoDiT:
    """Give the zero-initialised parts random values so outputs depend on every input."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(std=0.02)
    return model


def test_presets_match_the_world_vocabulary() -> None:
    for config in PRESETS.values():
        assert config.vocab_size == len(VOCAB)


def test_output_shape_matches_input_for_every_canvas() -> None:
    model = VideoDiT(PRESETS["tiny"]).eval()
    for height, width in ((27, 48), (36, 36), (48, 27)):
        x, mask, t, ids = tiny_inputs(height=height, width=width)
        assert model(x, mask, t, ids).shape == (2, 3, 16, height, width)
    x, mask, t, ids = tiny_inputs(frames=8)  # one temporal token: still images
    assert model(x, mask, t, ids).shape == (2, 3, 8, 27, 48)


def test_every_shipping_preset_takes_clips_and_stills_on_every_canvas() -> None:
    for name in ("builtin-s", "builtin-t4"):
        model = VideoDiT(PRESETS[name]).eval()
        with torch.inference_mode():
            for height, width in ((27, 48), (36, 36), (48, 27)):
                for frames in (16, 8):
                    x, mask, t, ids = tiny_inputs(height=height, width=width, frames=frames)
                    assert model(x, mask, t, ids).shape == (2, 3, frames, height, width), name


def test_fresh_model_predicts_zeros_adaln_zero_start() -> None:
    model = VideoDiT(PRESETS["builtin-s"]).eval()
    out = model(*tiny_inputs())
    assert torch.count_nonzero(out) == 0


def test_forward_is_deterministic_and_batch_independent() -> None:
    model = trained_like(VideoDiT(PRESETS["tiny"])).eval()
    x, mask, t, ids = tiny_inputs(batch=3)
    with torch.no_grad():
        a, b = model(x, mask, t, ids), model(x, mask, t, ids)
        single = model(x[1:2], mask[1:2], t[1:2], ids[1:2])
    assert torch.equal(a, b)
    torch.testing.assert_close(a[1:2], single, atol=1e-5, rtol=1e-4)


def test_caption_and_noise_level_change_the_prediction() -> None:
    model = trained_like(VideoDiT(PRESETS["tiny"])).eval()
    x, mask, t, ids = tiny_inputs()
    with torch.no_grad():
        base = model(x, mask, t, ids)
        other_text = model(x, mask, t, torch.roll(ids, 1, dims=1))
        other_t = model(x, mask, 1 - t, ids)
    assert not torch.allclose(base, other_text)
    assert not torch.allclose(base, other_t)


def test_golden_slice_pins_the_numerics() -> None:
    torch.manual_seed(0)
    model = trained_like(VideoDiT(PRESETS["tiny"])).eval()
    with torch.no_grad():
        out = model(*tiny_inputs(batch=1))
    got = out[0, :, 3, 10, 20]
    expected = torch.tensor(GOLDEN)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-3)


GOLDEN = [-0.17330768704414368, 0.08199738711118698, 0.025176353752613068]


def test_overfits_one_tiny_batch() -> None:
    torch.manual_seed(0)
    model = VideoDiT(PRESETS["tiny"])
    x, mask, t, ids = tiny_inputs(batch=2, frames=8, height=9, width=12)
    target = torch.tanh(x)  # any fixed clip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = (model(x, mask, t, ids) - target).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_a_caption_encoded_once_predicts_exactly_what_its_ids_do() -> None:
    model = trained_like(VideoDiT(PRESETS["tiny"])).eval()
    x, mask, t, ids = tiny_inputs()
    with torch.no_grad():
        text = model.encode_text(ids)
        assert torch.equal(model(x, mask, t, ids), model(x, mask, t, text=text))
        assert torch.equal(model(x, mask, 1 - t, ids), model(x, mask, 1 - t, text=text))  # reused per step
    with pytest.raises(ValueError, match="needs the caption"):
        model(x, mask, t)


def test_channels_last_weights_give_the_same_prediction() -> None:
    model = trained_like(VideoDiT(PRESETS["tiny"])).eval()
    inputs = tiny_inputs()
    with torch.no_grad():
        plain = model(*inputs)
        fast = model.to(memory_format=torch.channels_last_3d)(*inputs)
    assert model.refine[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-4)
