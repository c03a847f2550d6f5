"""Shared request types: the aspect ratio nearest to a picture, nominal or on a model's canvases."""

from __future__ import annotations

import pytest

from kinema.spec import nearest_aspect


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (16 / 9, "16:9"),
        (1920 / 1080, "16:9"),
        (5 / 4, "1:1"),
        (3 / 2, "16:9"),
        (9 / 16, "9:16"),
        (1.0, "1:1"),
    ],
)
def test_nearest_nominal_aspect(ratio: float, expected: str) -> None:
    assert nearest_aspect(ratio) == expected


def test_nearest_aspect_on_a_models_canvases_uses_their_real_shapes() -> None:
    # A model whose "16:9" canvas is really 2:1 and whose "1:1" is 4:3: a 1.6 picture is nearer 4:3.
    canvases = {"16:9": (256, 512), "9:16": (512, 256), "1:1": (384, 512)}
    assert nearest_aspect(1.6, canvases) == "1:1"
    assert nearest_aspect(1.6) == "16:9"
    assert nearest_aspect(1.9, {"9:16": (512, 256), "1:1": (384, 384)}) == "1:1"  # only what it renders
