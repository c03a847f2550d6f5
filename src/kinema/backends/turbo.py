"""`turbo`: diffusers' caches that skip transformer work on steps that change little. Off by default,
because every one of them changes the output.

- "first-block" (First Block Cache): when the first block's output changed by less than
  `turbo_threshold` (relative, default 0.05) since the last full step, the other blocks are skipped and
  their cached residual reused. PR huggingface/diffusers#11180: 1.6x (0.05), 2.5x (0.10), 3.9x (0.20) on
  Wan, "values below 0.2 work well ... higher values lead to blurring".
- "magcache" (MagCache, arXiv 2506.09045): skips whole steps while the accumulated error predicted by
  per-step residual magnitude ratios stays below `turbo_threshold` (default 0.06); the ratios are
  calibrated per checkpoint (`turbo_ratios`, or "calibrate" to have diffusers print them).
- "taylorseer" (TaylorSeer, arXiv 2503.06923, diffusers' "lite" variant): computes every
  `turbo_interval`-th step after `turbo_warmup` full ones and predicts the output projection in between
  from a first-order Taylor expansion; the blocks are skipped.

It knows diffusers' cache configs and nothing of any one model family.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol

from kinema.backends.guidance import transformers_of
from kinema.errors import ModelLoadError

TURBOS = ("off", "first-block", "magcache", "taylorseer")
THRESHOLDS = {"first-block": 0.05, "magcache": 0.06}  # diffusers' defaults (FBC: Kinema's since #11180)
TAYLORSEER = {"turbo_interval": 5, "turbo_warmup": 3}  # diffusers' cache_interval, disable_cache_before_step


class TurboOptions(Protocol):
    """The fields of `pipeline.LoadOptions` the caches read."""

    @property
    def turbo(self) -> str: ...
    @property
    def turbo_threshold(self) -> float | None: ...
    @property
    def turbo_ratios(self) -> Sequence[float] | str | None: ...
    @property
    def turbo_interval(self) -> int | None: ...
    @property
    def turbo_warmup(self) -> int | None: ...
    @property
    def dtype(self) -> str: ...


def check(options: TurboOptions, model: str) -> None:
    """Refuse an unknown mode, a knob of another mode, or a knob out of its range."""
    turbo = options.turbo
    if turbo not in TURBOS:
        raise ModelLoadError(f"model {model!r}: turbo must be one of {', '.join(TURBOS)}, not {turbo!r}")
    if options.turbo_threshold is not None:
        if turbo not in THRESHOLDS:
            raise ModelLoadError(
                f'model {model!r}: turbo_threshold applies to turbo = "first-block" or "magcache"'
            )
        if not 0 < options.turbo_threshold < 1:
            raise ModelLoadError(
                f"model {model!r}: turbo_threshold must be between 0 and 1 (0.05 to 0.2 is usual)"
            )
    if (options.turbo_ratios is not None) != (turbo == "magcache"):
        raise ModelLoadError(
            f'model {model!r}: turbo = "magcache" goes with turbo_ratios (the checkpoint\'s calibrated '
            'magnitude ratios, or "calibrate" to measure them), and turbo_ratios with nothing else'
        )
    if turbo == "magcache":
        _check_ratios(options.turbo_ratios, model)
    for knob, least in (("turbo_interval", 2), ("turbo_warmup", 1)):
        value = getattr(options, knob)
        if value is None:
            continue
        if turbo != "taylorseer":
            raise ModelLoadError(f'model {model!r}: {knob} applies to turbo = "taylorseer" only')
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ModelLoadError(f"model {model!r}: {knob} must be a whole number of steps, {least} or more")


def _check_ratios(ratios: Any, model: str) -> None:
    if ratios == "calibrate":
        return
    numbers = isinstance(ratios, list | tuple) and all(
        isinstance(r, int | float) and not isinstance(r, bool) and r > 0 for r in ratios
    )
    if not numbers or len(ratios) < 2:
        raise ModelLoadError(
            f'model {model!r}: turbo_ratios must be a list of positive numbers, one per step, or "calibrate"'
        )


def enable(pipe: Any, options: TurboOptions, model: str) -> None:
    """Put the cache `options.turbo` on every transformer of `pipe`, or refuse in one sentence."""
    check(options, model)
    if options.turbo == "off":
        return
    transformers = transformers_of(pipe)  # Wan 2.2 A14B has two experts; both get the cache
    if options.turbo == "magcache" and len(transformers) > 1:
        raise ModelLoadError(
            f"model {model!r}: MagCache counts steps per transformer and cannot follow Wan 2.2's switch "
            'between experts; use turbo = "first-block" or "taylorseer"'
        )
    if not transformers:
        raise ModelLoadError(
            f'model {model!r}: turbo needs a transformer and this model has none; set turbo = "off"'
        )
    for transformer in transformers:
        try:
            transformer.enable_cache(_config(options))
        except (AttributeError, ValueError, IndexError) as exc:  # a UNet, blocks diffusers' caches do not
            # know, or one block only: nothing to skip
            raise ModelLoadError(
                f"model {model!r}: turbo cannot be applied to its transformer ({_first_line(exc)}); "
                'set turbo = "off"'
            ) from None
        if not _hooked(transformer, options.turbo):
            raise ModelLoadError(
                f"model {model!r}: turbo {options.turbo!r} found no blocks (or no output projection) to "
                'cache in its transformer; set turbo = "off" or "first-block"'
            )


def match_steps(pipe: Any, options: TurboOptions, steps: int) -> None:
    """MagCache reads its ratios by step index (and prints calibrated ones after its last step): fit
    them to this call's number of steps."""
    if options.turbo != "magcache":
        return
    import torch

    mag_cache = importlib.import_module("diffusers.hooks.mag_cache")
    config = pipe.transformer._cache_config  # the config object every MagCache hook reads
    config.num_inference_steps = steps
    ratios = options.turbo_ratios
    if ratios is not None and not isinstance(ratios, str):  # a str is "calibrate"
        config.mag_ratios = mag_cache.nearest_interp(torch.tensor(list(ratios)), steps)


def _config(options: TurboOptions) -> Any:
    diffusers = importlib.import_module("diffusers")
    threshold = options.turbo_threshold or THRESHOLDS.get(options.turbo)
    if options.turbo == "first-block":
        return diffusers.FirstBlockCacheConfig(threshold=threshold)
    if options.turbo == "magcache":
        if options.turbo_ratios == "calibrate":
            return diffusers.MagCacheConfig(threshold=threshold, calibrate=True)
        assert options.turbo_ratios is not None
        ratios = list(options.turbo_ratios)
        return diffusers.MagCacheConfig(
            threshold=threshold, mag_ratios=ratios, num_inference_steps=len(ratios)
        )
    import torch

    return diffusers.TaylorSeerCacheConfig(
        cache_interval=options.turbo_interval or TAYLORSEER["turbo_interval"],
        disable_cache_before_step=options.turbo_warmup or TAYLORSEER["turbo_warmup"],
        taylor_factors_dtype=getattr(torch, options.dtype),  # the model's own: no rounding of the factors
        use_lite_mode=True,  # skip the blocks, predict the output projection: least memory
    )


def _hooked(transformer: Any, turbo: str) -> bool:
    """Whether the cache found what it needs: a block to skip (TaylorSeer: and the output projection)."""
    hooked = {
        name
        for name, module in transformer.named_modules()
        if set(getattr(getattr(module, "_diffusers_hook", None), "hooks", {})) - {"kinema_cfg_batch"}
    }
    if turbo == "taylorseer":
        return "proj_out" in hooked and len(hooked) > 1
    return bool(hooked)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
