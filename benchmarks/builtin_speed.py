"""The built-in model on this CPU: clip wall time, FLOP efficiency, overhead share and long-video memory.

Reproduce with `python -m benchmarks.builtin_speed` (or `make bench`). Every ratio compares two numbers
taken in this same run: achieved model GFLOP/s vs this machine's measured fp32 matmul peak, time inside
the model forward vs the whole request, peak memory of a 3-minute extension vs a 10-second clip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from kinema.backends.builtin import BuiltinBackend
from kinema.engine.generation import Engine
from kinema.spec import ExtendVideo, TextToVideo

PROMPT = "a red circle moving right on a navy background"


def matmul_peak(size: int = 2048, repeats: int = 5, trials: int = 5) -> float:
    """GFLOP/s of a large fp32 matmul, the best of `trials`: the machine's practical peak for this
    process (one trial on this shared VM read anywhere from 83 to 134 GFLOP/s)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best / 1e9


def clip_timing(engine: Engine, backend: BuiltinBackend, runs: int) -> dict[str, float]:
    """Wall time of a 5-second clip and the share of it spent inside the model forward."""
    net = backend.net
    inside = [0.0]
    original = net.forward

    def timed(*args: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        start = time.perf_counter()
        out = original(*args, **kwargs)
        inside[0] += time.perf_counter() - start
        return out

    net.forward = timed  # type: ignore[method-assign]
    walls = []
    with tempfile.TemporaryDirectory() as work:
        engine.run(TextToVideo(prompt=PROMPT, seed=0), Path(work) / "warm")
        inside[0] = 0.0
        for i in range(runs):
            start = time.perf_counter()
            engine.run(TextToVideo(prompt=PROMPT, seed=i), Path(work) / str(i))
            walls.append(time.perf_counter() - start)
    net.forward = original  # type: ignore[method-assign]
    wall = sorted(walls)[len(walls) // 2]
    return {"clip_wall_s": wall, "outside_forward_share": 1.0 - inside[0] / sum(walls)}


def forward_efficiency(backend: BuiltinBackend, peak: float, *, compiled: bool = False) -> dict[str, float]:
    """FLOPs of one guided forward (batch 2, one 16-frame 16:9 window) and the GFLOP/s it reaches.
    The forward is the sampler's per-step call: the caption enters encoded once per clip. `compiled`
    times the same forward under torch.compile (inductor fuses the element-wise ops between the
    matmuls) and reports what the compilation cost."""
    net = backend.net
    x = torch.randn(2, 3, 16, 27, 48)
    mask, t, ids = torch.zeros(2, 1, 16, 27, 48), torch.full((2,), 0.5), torch.ones(2, 16, dtype=torch.long)
    with torch.no_grad():
        text = net.encode_text(ids)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, mask, t, text=text)
    flops = counter.get_total_flops()
    seconds = float("inf")
    forward = torch.compile(net) if compiled else net
    with torch.no_grad():
        start = time.perf_counter()
        forward(x, mask, t, text=text)
        first = time.perf_counter() - start
        for _ in range(4):  # the best of four trials, as for the peak it is divided by
            start = time.perf_counter()
            for _ in range(5):
                forward(x, mask, t, text=text)
            seconds = min(seconds, (time.perf_counter() - start) / 5)
    achieved = flops / seconds / 1e9
    prefix = "compiled_" if compiled else ""
    numbers = {
        f"{prefix}forward_ms": seconds * 1e3,
        f"{prefix}forward_gflops": achieved,
        f"{prefix}flop_efficiency": achieved / peak,
    }
    if compiled:
        return {**numbers, "compile_s": first}
    return {"forward_gflop": flops / 1e9, **numbers, "matmul_peak_gflops": peak}


def peak_rss_mb(seconds: float) -> tuple[float, float]:
    """(peak RSS, peak RSS above the loaded-model baseline) in MB of a fresh process that makes a
    10-second clip and then, if `seconds` > 0, extends it by that many seconds."""
    code = "import sys; from benchmarks.builtin_speed import run_memory_case as r; r(float(sys.argv[1]))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(seconds)], check=True, capture_output=True, text=True
    )
    peak, baseline = (float(v) for v in out.stdout.strip().splitlines()[-1].split())
    return peak, peak - baseline


def _rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory (VmRSS) or its peak (VmHWM) in MB. The peak is read here rather
    than from getrusage, whose ru_maxrss survives exec: a child would report at least the resident
    size of the parent it was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_memory_case(seconds: float) -> None:
    backend = BuiltinBackend()
    engine = Engine(lambda model: backend)
    backend.net  # noqa: B018  (load the weights before taking the baseline)
    baseline = _rss_mb()
    with tempfile.TemporaryDirectory() as work:
        base = engine.run(TextToVideo(prompt=PROMPT, seed=0, duration=10), Path(work) / "base")
        if seconds > 0:
            video = base.candidates[0].video or ""
            engine.run(ExtendVideo(prompt=PROMPT, video=video, seconds=seconds, seed=0), Path(work) / "ext")
    print(_rss_mb("VmHWM"), baseline)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--compiled", action="store_true", help="also time the forward under torch.compile (about a minute)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    backend = BuiltinBackend()
    engine = Engine(lambda model: backend)
    peak = matmul_peak()
    numbers = {**clip_timing(engine, backend, args.runs), **forward_efficiency(backend, peak)}
    if args.compiled:
        numbers.update(forward_efficiency(backend, peak, compiled=True))
    if not args.skip_memory:
        (short, short_gen), (long, long_gen) = peak_rss_mb(0.0), peak_rss_mb(170.0)
        numbers.update(
            {
                "rss_10s_mb": short,
                "rss_3min_mb": long,
                "memory_ratio_3min_vs_10s": long / short,
                "gen_10s_mb": short_gen,
                "gen_3min_mb": long_gen,
            }
        )
    flags = " --compiled" if args.compiled else ""
    print(f"# python -m benchmarks.builtin_speed --runs {args.runs} --threads {args.threads}{flags}")
    print(f"5-second clip (40 frames at 8 fps, 16:9, std): {numbers['clip_wall_s']:.2f} s wall (goal <= 5 s)")
    print(f"time outside the model forward: {numbers['outside_forward_share']:.1%} (goal < 5 %)")
    print(
        f"forward: {numbers['forward_gflop']:.2f} GFLOP in {numbers['forward_ms']:.1f} ms = "
        f"{numbers['forward_gflops']:.1f} GFLOP/s vs matmul peak {peak:.1f} GFLOP/s = "
        f"{numbers['flop_efficiency']:.1%} (goal >= 50 %)"
    )
    if args.compiled:
        print(
            f"forward under torch.compile: {numbers['compiled_forward_ms']:.1f} ms = "
            f"{numbers['compiled_forward_gflops']:.1f} GFLOP/s = {numbers['compiled_flop_efficiency']:.1%} "
            f"(compiled in {numbers['compile_s']:.0f} s, once per process and input shape)"
        )
    if "memory_ratio_3min_vs_10s" in numbers:
        print(
            f"peak RSS: 3-minute video {numbers['rss_3min_mb']:.0f} MB vs 10-second "
            f"{numbers['rss_10s_mb']:.0f} MB = {numbers['memory_ratio_3min_vs_10s']:.2f}x (goal <= 1.2); "
            f"above the loaded model: {numbers['gen_3min_mb']:.0f} MB vs {numbers['gen_10s_mb']:.0f} MB"
        )
    print(json.dumps({k: round(v, 4) for k, v in numbers.items()}))
    return numbers


if __name__ == "__main__":
    main()
