"""Kinema's open-model backends against the stock diffusers pipelines: same pipeline, same settings, one run.

Full size on a CUDA GPU: Wan2.1-T2V-1.3B at 832x480x81 and LTX-Video 2B at 768x512x121, 50 steps with
guidance, every component (text encoder, transformer, VAE) built at its released size with random
weights (no download). `--tiny`, and any machine without CUDA, runs the same code at tiny size on the
CPU so it is known to work. Reproduce with `python -m benchmarks diffusers [--tiny] [--option key=value]`:
`--option cfg_batch=true`, `--option turbo=first-block|taylorseer`, `--option turbo=magcache --option
'turbo_ratios=[1.0, 0.99, ...]'` (values are JSON where they parse). A case whose family refuses an
option (LTX-Video already batches its guidance) is reported as skipped with the reason.

Per model it prints the wall time of the stock call (`pipe(...)`) and of Kinema's backend
(`Backend.generate`), their ratio, each one's peak GPU memory, the FLOPs of the stock computation and
the utilisation they reach against a measured matmul peak, and how far Kinema's frames are from stock's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from kinema.backends.base import Segment
from kinema.backends.pipeline import generator, library, quiet_diffusers, to_uint8
from kinema.errors import ModelLoadError

PROMPT = "a red fox running through fresh snow in a pine forest, morning light, tracking shot"
NOMINAL_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "RTX 4090": 165.0}


@dataclass(frozen=True)
class Case:
    """One model at one setting: how to build its pipeline and its Kinema backend."""

    name: str
    family: str  # kinema backend family: "wan" or "ltx"
    height: int
    width: int
    num_frames: int
    steps: int
    guidance: float
    build: Callable[[str, torch.dtype], Any]  # (device, dtype) -> pipeline

    def segment(self, steps: int | None = None, seed: int = 0) -> Segment:
        return Segment(
            prompt=PROMPT,
            negative_prompt=None,
            num_frames=self.num_frames,
            height=self.height,
            width=self.width,
            num_inference_steps=steps or self.steps,
            guidance_scale=self.guidance,
            seeds=(seed,),
        )


# --- full-size architectures with random weights ------------------------------------------------------
@contextlib.contextmanager
def building(device: str, dtype: torch.dtype) -> Iterator[None]:
    """Create modules directly on `device` in `dtype`: a 5B text encoder initialises in seconds on a GPU."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(before)


def _xxl_encoder(cls: str, config: str, vocab_size: int) -> Any:
    """A T5-XXL-sized encoder (UMT5 for Wan, T5 v1.1 for LTX), as the released checkpoints configure it."""
    transformers = library("transformers")
    settings = dict(
        vocab_size=vocab_size,
        d_model=4096,
        d_ff=10240,
        d_kv=64,
        num_heads=64,
        num_layers=24,
        feed_forward_proj="gated-gelu",
        relative_attention_num_buckets=32,
        dropout_rate=0.0,
    )
    return getattr(transformers, cls)(getattr(transformers, config)(**settings)).eval()


def wan_full(device: str, dtype: torch.dtype) -> Any:
    """Wan2.1-T2V-1.3B: 30 layers, 12 heads x 128, ffn 8960; the VAE in float32 as Kinema loads it."""
    from kinema.backends import tiny

    diffusers = library("diffusers")
    with building(device, dtype):
        transformer = diffusers.WanTransformer3DModel(
            num_attention_heads=12, attention_head_dim=128, ffn_dim=8960, num_layers=30
        )
        text_encoder = _xxl_encoder("UMT5EncoderModel", "UMT5Config", 256384)
    with building(device, torch.float32):
        vae = diffusers.AutoencoderKLWan()
    return diffusers.WanPipeline(
        tokenizer=tiny.tokenizer(),
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
        ),
    )


def ltx_full(device: str, dtype: torch.dtype) -> Any:
    """LTX-Video 2B (0.9.0 layout): diffusers' default transformer and VAE configs are the released ones."""
    from kinema.backends import tiny

    diffusers = library("diffusers")
    with building(device, dtype):
        pipe = diffusers.LTXConditionPipeline(
            tokenizer=tiny.tokenizer(),
            text_encoder=_xxl_encoder("T5EncoderModel", "T5Config", 32128),
            transformer=diffusers.LTXVideoTransformer3DModel(),
            vae=diffusers.AutoencoderKLLTXVideo(),
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        )
    return pipe


def wan_tiny(device: str, dtype: torch.dtype) -> Any:
    from kinema.backends.wan import tiny_pipeline

    return tiny_pipeline("t2v").to(device)


def ltx_tiny(device: str, dtype: torch.dtype) -> Any:
    from kinema.backends.ltx import tiny_pipeline

    return tiny_pipeline().to(device)


FULL = (
    Case("Wan2.1-T2V-1.3B 832x480x81", "wan", 480, 832, 81, 50, 5.0, wan_full),
    Case("LTX-Video-2B 768x512x121", "ltx", 512, 768, 121, 50, 3.0, ltx_full),
)
TINY = (
    Case("tiny Wan 32x16x9", "wan", 16, 32, 9, 4, 5.0, wan_tiny),
    Case("tiny LTX 64x32x9", "ltx", 32, 64, 9, 4, 3.0, ltx_tiny),
)


# --- the two ways to call one pipeline ----------------------------------------------------------------
def stock_call(case: Case, pipe: Any, segment: Segment) -> np.ndarray:
    """The diffusers pipeline called directly with the settings Kinema's backend passes it."""
    kwargs: dict[str, Any] = {}
    if case.family == "ltx":
        schedule = library("diffusers.pipelines.ltx.pipeline_ltx_condition").linear_quadratic_schedule
        kwargs["frame_rate"] = 24
        kwargs["timesteps"] = (schedule(segment.num_inference_steps) * 1000.0).tolist()
        if pipe.vae.config.get("timestep_conditioning"):
            kwargs.update(decode_timestep=0.05, decode_noise_scale=0.025)
    frames = pipe(
        prompt=segment.prompt,
        negative_prompt=segment.negative_prompt,
        num_frames=segment.num_frames,
        height=segment.height,
        width=segment.width,
        num_inference_steps=segment.num_inference_steps,
        guidance_scale=segment.guidance_scale,
        generator=generator(segment.seeds[0]),
        output_type="np",
        **kwargs,
    ).frames[0]
    return to_uint8(frames)[None]


def kinema_backend(case: Case, pipe: Any, *, device: str, dtype: str, options: dict[str, Any]) -> Any:
    """Kinema's backend for the family, serving the already-built pipeline with the given options."""
    from kinema.backends.registry import families

    cls = families()[case.family].load()
    return cls(f"bench-{case.family}", pipeline=pipe, device=device, dtype=dtype, **options)


def kinema_call(backend: Any, segment: Segment) -> np.ndarray:
    frames: np.ndarray = backend.generate(segment, on_step=lambda *_: None, should_stop=lambda: False)
    return frames


# --- measuring ----------------------------------------------------------------------------------------
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, call: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float | None]:
    """(frames, wall seconds, peak GPU memory in GiB or None on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        frames = call()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return frames, seconds, peak


def best_of(runs: int, device: str, call: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float | None]:
    """The fastest of `runs` timed calls (the others only add noise from other work on the machine)."""
    return min((timed(device, call) for _ in range(runs)), key=lambda result: result[1])


def counted_flops(call: Callable[[], Any]) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        call()
    return int(counter.get_total_flops())


def stock_flops(case: Case, pipe: Any) -> float:
    """FLOPs of one stock call at `case.steps`: calls of 1 and 2 steps give the per-step share (the
    transformer, twice with guidance) and the fixed share (text encoder, VAE decode). Doubles as warm-up."""
    one = counted_flops(lambda: stock_call(case, pipe, case.segment(steps=1)))
    two = counted_flops(lambda: stock_call(case, pipe, case.segment(steps=2)))
    per_step = two - one
    return float(one - per_step + case.steps * per_step)


def matmul_peak(device: str, dtype: torch.dtype) -> float:
    """FLOP/s of a large matmul in `dtype`: this machine's practical peak for this process."""
    size = 8192 if device.startswith("cuda") else 1024
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    synchronize(device)
    repeats = 20 if device.startswith("cuda") else 5
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def nominal_peak(device: str) -> float | None:
    """The datasheet's dense bf16 FLOP/s of this GPU, when it is one we know."""
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((tf * 1e12 for key, tf in NOMINAL_PEAK_TFLOPS.items() if key in name), None)


def difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Largest per-pixel difference (0..255) and PSNR in dB (inf when bit-identical)."""
    delta = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(delta**2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return {"max_abs_diff": float(np.abs(delta).max()), "psnr_db": psnr}


def run_case(
    case: Case, *, device: str, dtype: torch.dtype, options: dict[str, Any], peak: float, runs: int
) -> dict[str, Any]:
    # 1. Build the pipeline once; both arms call the very same modules.
    torch.manual_seed(0)
    pipe = case.build(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    # 2. Count the stock FLOPs (these short calls also warm the kernels up), then time stock.
    flops = stock_flops(case, pipe)
    stock, stock_s, stock_peak = best_of(runs, device, lambda: stock_call(case, pipe, case.segment()))
    # 3. Kinema's backend on the same pipeline, with its options (which may change the modules).
    backend = kinema_backend(
        case, pipe, device=device, dtype=str(dtype).removeprefix("torch."), options=options
    )
    kinema_call(backend, case.segment(steps=2))  # warm-up: compile and caches settle here
    ours, ours_s, ours_peak = best_of(runs, device, lambda: kinema_call(backend, case.segment()))
    return {
        "case": case.name,
        "steps": case.steps,
        "guidance": case.guidance,
        "stock_s": stock_s,
        "kinema_s": ours_s,
        "speedup": stock_s / ours_s,
        "stock_peak_gib": stock_peak,
        "kinema_peak_gib": ours_peak,
        "stock_tflop": flops / 1e12,
        "stock_utilisation": flops / stock_s / peak,
        "kinema_effective_utilisation": flops / ours_s / peak,
        **difference(stock, ours),
    }


def report(result: dict[str, Any], *, peak: float, nominal: float | None, gpu: bool) -> None:
    def gib(value: float | None) -> str:
        return "n/a (CPU)" if value is None else f"{value:.1f} GiB"

    print(f"{result['case']}, {result['steps']} steps, guidance {result['guidance']}:")
    print(
        f"  stock diffusers {result['stock_s']:.2f} s, Kinema {result['kinema_s']:.2f} s: "
        f"{result['speedup']:.2f}x"
        + (" (goal >= 2x)" if gpu else " (tiny on a CPU: a check that it runs, not a speed)")
    )
    print(
        f"  peak GPU memory: stock {gib(result['stock_peak_gib'])}, Kinema {gib(result['kinema_peak_gib'])}"
    )
    line = (
        f"  stock computation {result['stock_tflop']:.4g} TFLOP: stock reaches "
        f"{result['stock_utilisation']:.1%}, Kinema {result['kinema_effective_utilisation']:.1%} "
        f"of the measured matmul peak {peak / 1e12:.1f} TFLOP/s"
    )
    if nominal is not None:
        share = result["stock_tflop"] * 1e12 / result["kinema_s"] / nominal
        line += f" (Kinema vs the datasheet's {nominal / 1e12:.0f} TFLOP/s: {share:.1%})"
    print(line)
    print(
        f"  output vs stock: max |diff| {result['max_abs_diff']:.0f}/255, "
        f"PSNR {result['psnr_db']:.1f} dB" + (" (bit-identical)" if result["max_abs_diff"] == 0 else "")
    )


def parse_option(text: str) -> tuple[str, Any]:
    """`key=value` with a JSON value where it parses (numbers, true/false), else the string."""
    key, _, value = text.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument(
        "--tiny", action="store_true", help="tiny models on the CPU (the default without CUDA)"
    )
    parser.add_argument("--models", default="wan,ltx", help="comma-separated: wan, ltx")
    parser.add_argument("--steps", type=int, help="denoising steps (default: 50 full size, 4 tiny)")
    parser.add_argument("--frames", type=int, help="frames per clip (default: the case's)")
    parser.add_argument("--runs", type=int, help="timed calls per arm, the fastest counts (1 full, 3 tiny)")
    parser.add_argument(
        "--option", action="append", default=[], help="a Kinema backend option, key=value (repeatable)"
    )
    args = parser.parse_args(argv)
    try:
        quiet_diffusers()
    except ImportError:
        print("diffusers benchmark skipped: needs the diffusers extra (pip install 'kinema[diffusers]')")
        return []
    tiny = args.tiny or not torch.cuda.is_available()
    device, dtype = ("cpu", torch.float32) if tiny else ("cuda", torch.bfloat16)
    options = dict(parse_option(o) for o in args.option)
    cases = [c for c in (TINY if tiny else FULL) if c.family in args.models.split(",")]
    cases = [replace(c, steps=args.steps or c.steps, num_frames=args.frames or c.num_frames) for c in cases]
    runs = args.runs or (3 if tiny else 1)
    peak, nominal = matmul_peak(device, dtype), nominal_peak(device)
    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# python -m benchmarks diffusers {' '.join(argv or [])}".rstrip())
    print(f"# {where}, {dtype}, Kinema options {options or 'none'}")
    results = []
    for case in cases:  # one case at a time: its pipeline is freed before the next is built
        try:
            result = run_case(case, device=device, dtype=dtype, options=options, peak=peak, runs=runs)
        except ModelLoadError as exc:
            print(f"{case.name}: skipped, {exc}")
            continue
        report(result, peak=peak, nominal=nominal, gpu=device == "cuda")
        results.append(result)
        if device == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps([{k: _plain(v) for k, v in r.items()} for r in results]))
    return results


def _plain(value: Any) -> Any:
    """A JSON-safe rounded number (infinite PSNR, meaning identical frames, becomes null)."""
    if isinstance(value, float):
        return round(value, 4) if np.isfinite(value) else None
    return value


if __name__ == "__main__":
    main()
