"""Smoke test of the weights shipped in the package: they load, generate, and the checker agrees.

The attributes checked are those the weights' card records at >= 90 % accuracy from its last full
`kinema eval builtin --record`, so this test tightens by itself as the model improves.
"""

from pathlib import Path

import pytest

from kinema.backends.builtin import BuiltinBackend
from kinema.backends.builtin_weights import DEFAULT_WEIGHTS, read_card
from kinema.engine import video
from kinema.engine.generation import Engine
from kinema.spec import TextToVideo
from kinema.world import checker
from kinema.world.captions import parse

PROMPTS = [
    "a red circle moving right on a navy background",
    "a white square falling on a black background",
    "a green triangle growing on a maroon background",
]


@pytest.mark.slow
def test_shipped_weights_pass_the_checker_on_what_they_claim(tmp_path: Path) -> None:
    card = read_card(DEFAULT_WEIGHTS)
    claimed = card.get("eval", {}).get("t2v", {}).get("all", {})
    strong = [a for a in ("colour", "shape", "motion", "background") if claimed.get(a, 0.0) >= 0.9]
    engine = Engine(lambda model: BuiltinBackend())
    hits = {a: 0 for a in strong}
    for seed, prompt in enumerate(PROMPTS):
        result = engine.run(TextToVideo(prompt=prompt, seed=seed), tmp_path / str(seed))
        frames = video.read_video(
            Path(result.candidates[0].video or ""),
            max_frames=1000,
            max_pixels=10**7,
            size=(result.plan.height, result.plan.width),
        ).frames
        assert frames.shape == (40, 27, 48, 3)
        grades = checker.grade(parse(prompt), checker.read_clip(frames))
        for attribute in strong:
            hits[attribute] += grades[attribute]
    assert all(count >= 2 for count in hits.values()), (hits, claimed)
