from pathlib import Path

import numpy as np
import pytest
import torch

from kinema.backends.base import Backend, Segment
from kinema.backends.builtin import BuiltinBackend
from kinema.backends.builtin_weights import load_model, save_model
from kinema.errors import Cancelled, InvalidRequest, ModelLoadError
from kinema.models.dit import PRESETS, VideoDiT


def random_tiny() -> VideoDiT:
    torch.manual_seed(0)
    model = VideoDiT(PRESETS["tiny"])
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(std=0.05)  # undo the zero start so outputs depend on inputs
    return model.eval()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_model(random_tiny(), path, {"training": {"steps": 0}})
    return path


@pytest.fixture
def backend(weights: Path) -> BuiltinBackend:
    return BuiltinBackend(weights=weights)


def segment(**overrides: object) -> Segment:
    values: dict[str, object] = dict(
        prompt="a red circle moving left on a black background",
        negative_prompt=None,
        num_frames=16,
        height=27,
        width=48,
        num_inference_steps=3,
        guidance_scale=4.0,
        seeds=(7,),
    )
    values.update(overrides)
    return Segment(**values)  # type: ignore[arg-type]


def run(backend: BuiltinBackend, seg: Segment, **kw: object) -> np.ndarray:
    return backend.generate(
        seg,
        on_step=kw.get("on_step", lambda *a: None),  # type: ignore[arg-type]
        should_stop=kw.get("should_stop", lambda: False),
    )  # type: ignore[arg-type]


def test_is_a_backend_and_lists_its_capabilities(backend: BuiltinBackend) -> None:
    assert isinstance(backend, Backend)
    caps = backend.capabilities()
    assert caps.kinds == {"text2video", "image2video", "extend", "text2image"}
    assert caps.canvases["1:1"] == (36, 36) and caps.fps == 8


def test_weights_round_trip_through_fp16_safetensors(weights: Path) -> None:
    loaded = load_model(weights)
    original = random_tiny()
    for name, tensor in original.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor.half().float())


def test_missing_weights_say_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="kinema train builtin"):
        load_model(tmp_path / "none.safetensors")


def test_frames_shape_and_seed_determinism(backend: BuiltinBackend) -> None:
    a, b = run(backend, segment()), run(backend, segment())
    assert a.shape == (1, 16, 27, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, run(backend, segment(seeds=(8,))))


def test_each_candidate_equals_a_single_draw_with_its_seed(backend: BuiltinBackend) -> None:
    both = run(backend, segment(seeds=(7, 8)))
    alone = run(backend, segment(seeds=(8,)))[0]
    diff = np.abs(both[1].astype(int) - alone)  # batched matmuls round differently, by a level at most
    assert diff.max() <= 2 and diff.mean() < 0.05


def test_given_frames_come_back_exactly(backend: BuiltinBackend) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (1, 36, 36, 3), dtype=np.uint8)
    out = run(backend, segment(height=36, width=36, given={0: frame, 15: frame}))
    np.testing.assert_array_equal(out[:, 0], frame)
    np.testing.assert_array_equal(out[:, 15], frame)


def test_negative_prompt_and_guidance_change_the_result(backend: BuiltinBackend) -> None:
    base = run(backend, segment())
    assert not np.array_equal(base, run(backend, segment(negative_prompt="a blue square")))
    assert not np.array_equal(base, run(backend, segment(guidance_scale=1.0)))


def test_progress_and_cancellation_between_steps(backend: BuiltinBackend) -> None:
    steps: list[int] = []
    previews: list[np.ndarray | None] = []

    def on_step(step: int, total: int, preview: np.ndarray | None) -> None:
        steps.append(step)
        previews.append(preview)

    run(backend, segment(), on_step=on_step)
    assert steps == [1, 2, 3]
    assert previews[-1] is not None and previews[-1].shape == (27, 48, 3)
    with pytest.raises(Cancelled):
        run(backend, segment(), should_stop=lambda: len(steps) > 4, on_step=on_step)


def test_sizes_beyond_the_model_are_refused_with_the_limit(backend: BuiltinBackend) -> None:
    with pytest.raises(InvalidRequest, match="at most 48x48"):
        run(backend, segment(height=60, width=60))
    with pytest.raises(InvalidRequest, match="8 or 16 frames"):
        run(backend, segment(num_frames=12))


def test_segments_with_the_same_captions_encode_them_once(backend: BuiltinBackend) -> None:
    calls: list[tuple[int, ...]] = []
    encode = backend.net.encode_text

    def counted(ids: torch.Tensor):  # type: ignore[no-untyped-def]
        calls.append(tuple(ids.shape))
        return encode(ids)

    backend.net.encode_text = counted  # type: ignore[method-assign]
    first = run(backend, segment())
    again = run(backend, segment())  # the next segment of the same request
    run(backend, segment(prompt="a blue star spinning on a gray background"))
    run(backend, segment(guidance_scale=1.0))  # unguided: the prompt alone
    assert np.array_equal(first, again)
    assert calls == [(2, 16), (2, 16), (1, 16)]


def test_the_loaded_network_runs_channels_last(backend: BuiltinBackend) -> None:
    assert backend.net.refine[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
