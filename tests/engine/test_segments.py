import numpy as np
import pytest

from kinema.backends.fake import FakeBackend
from kinema.engine.segments import MAX_COLOUR_SHIFT, match_colour, plan_segments
from kinema.errors import InvalidRequest


def test_segments_cover_three_minutes_and_respect_the_window() -> None:
    caps = FakeBackend().capabilities()
    plans = plan_segments(180 * 8, caps, continues=True)
    assert sum(p.new for p in plans) == 180 * 8
    assert all(p.context == caps.context_frames and p.length <= caps.max_frames for p in plans)


def test_first_segment_of_a_new_video_has_no_context() -> None:
    plans = plan_segments(40, FakeBackend().capabilities(), continues=False)
    assert plans[0].context == 0 and plans[0].new == 16
    assert [p.new for p in plans[1:]] == [12, 12]


def test_small_colour_shifts_are_pulled_back_to_the_anchor_and_big_ones_kept() -> None:
    anchor = np.array([[100.0, 50.0, 20.0]])
    drifted = np.full((1, 4, 6, 6, 3), (105, 45, 20), np.uint8)
    np.testing.assert_array_equal(match_colour(drifted, anchor)[0, 0, 0, 0], (100, 50, 20))
    new_scene = np.full((1, 4, 6, 6, 3), (100 + 2 * MAX_COLOUR_SHIFT, 50, 20), np.uint8)
    np.testing.assert_array_equal(match_colour(new_scene, anchor), new_scene)


def test_a_model_without_frame_input_refuses_to_chain_instead_of_cutting() -> None:
    caps = FakeBackend().capabilities().model_copy(update={"context_frames": 0})
    assert len(plan_segments(16, caps, continues=False)) == 1
    with pytest.raises(InvalidRequest, match="cannot continue a video"):
        plan_segments(40, caps, continues=False)
