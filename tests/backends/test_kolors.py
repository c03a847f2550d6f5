from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from diffusers_support import engine_for, never, no_progress, tiny_options

from kinema.backends.base import Segment
from kinema.backends.kolors import KolorsBackend, tiny_pipeline
from kinema.engine import video
from kinema.errors import Cancelled, InvalidRequest
from kinema.spec import TextToImage, TextToVideo

# Third-party deprecations seen only under warnings-as-errors: diffusers' ChatGLM uses torch.jit.script,
# and its Euler scheduler turns a tensor into a numpy array without numpy 2's `copy` keyword.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return tiny_pipeline(tmp_path_factory.mktemp("kolors"))


@pytest.fixture
def kolors(pipeline: Any) -> KolorsBackend:
    options = tiny_options(32, max_frames=1)
    del options["max_frames"]
    return KolorsBackend("kolors", pipeline=pipeline, **options)


def test_text_to_image_through_the_engine(kolors: KolorsBackend, tmp_path: Path) -> None:
    assert kolors.capabilities().kinds == {"text2image"}
    result = engine_for(kolors).run(
        TextToImage(model="kolors", prompt="a red car", aspect_ratio="9:16", n=2, seed=4), tmp_path
    )
    images = [video.read_image(Path(c.image or ""), max_pixels=10**7) for c in result.candidates]
    assert images[0].shape[0] > images[0].shape[1]  # 9:16 is portrait
    assert not np.array_equal(images[0], images[1])
    assert (result.plan.height, result.plan.width) == (64, 32)


def test_keyframes_only(kolors: KolorsBackend, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot do text2video"):
        engine_for(kolors).run(TextToVideo(model="kolors", prompt="a red car"), tmp_path)
    with pytest.raises(InvalidRequest, match="single images"):
        kolors.generate(
            Segment("p", None, 1, 32, 64, 2, 5.0, (1,), {0: np.zeros((1, 32, 64, 3), np.uint8)}),
            on_step=no_progress,
            should_stop=never,
        )


def test_cancel_stops_between_steps(kolors: KolorsBackend) -> None:
    with pytest.raises(Cancelled):
        kolors.generate(
            Segment("p", None, 1, 32, 64, 2, 5.0, (1,), {}), on_step=no_progress, should_stop=lambda: True
        )


def test_tiny_folder_round_trips_through_save_and_load(kolors: KolorsBackend, tmp_path: Path) -> None:
    options = KolorsBackend.make_tiny(tmp_path / "kolors")
    loaded = KolorsBackend("kolors", weights=str(tmp_path / "kolors"), **options)
    seg = Segment("a red car", "blurry", 1, 32, 64, 2, 5.0, (1, 2), {})
    fresh = kolors.generate(seg, on_step=no_progress, should_stop=never)
    again = loaded.generate(seg, on_step=no_progress, should_stop=never)
    assert fresh.shape == (2, 1, 32, 64, 3)
    assert np.abs(fresh.astype(int) - again.astype(int)).max() <= 1
