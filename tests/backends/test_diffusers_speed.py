"""The diffusers-vs-Kinema benchmark runs end to end at tiny size on the CPU (the GPU path is the same)."""

import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra: pip install 'kinema[diffusers]'")

from benchmarks import diffusers_speed


def test_tiny_benchmark_times_both_arms_and_finds_kinema_bit_identical_to_stock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (wan,) = diffusers_speed.main(["--tiny", "--models", "wan", "--steps", "2", "--runs", "1"])
    assert wan["stock_s"] > 0 and wan["kinema_s"] > 0 and wan["speedup"] == wan["stock_s"] / wan["kinema_s"]
    assert wan["max_abs_diff"] == 0  # no options: Kinema's backend calls the pipeline exactly as stock does
    assert wan["stock_tflop"] > 0 and 0 < wan["stock_utilisation"] < 1
    assert wan["stock_peak_gib"] is None  # no GPU memory on the CPU path
    assert "bit-identical" in capsys.readouterr().out
