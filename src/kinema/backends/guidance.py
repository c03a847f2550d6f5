"""`cfg_batch`: a pipeline's conditional and unconditional transformer calls of one step as one forward.

Stock diffusers Wan, SkyReels-V2 and HunyuanVideo (true CFG) call the transformer twice per step with
the same latents and timestep, once with the prompt and once with the negative prompt. A diffusers hook
on the transformer turns the first of those calls into one forward on a batch of two (prompt, negative)
and answers the second from the stashed negative half. The backend encodes both prompts up front and
arms the hook with them for one pipeline call; it knows nothing of any one model family.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

HOOK = "kinema_cfg_batch"
TRANSFORMERS = ("transformer", "transformer_2")  # Wan 2.2 A14B: a high-noise and a low-noise expert


class BatchedGuidance:
    """The hook on one transformer (a `diffusers.hooks.ModelHook` in spirit; built by `hook_class`).

    Armed with the inputs that differ between the two calls (`cond`, `uncond`: keyword -> tensor), a call
    whose inputs are exactly (`is`) the conditional ones runs on the batch [cond, uncond]; the next call
    with the very same latents and timestep and the unconditional inputs gets the stashed half. Every
    other call, and every call while unarmed, goes through unchanged.
    """

    _is_stateful = True  # diffusers resets the stash at the end of each pipeline call

    def __init__(self) -> None:
        self.fn_ref: Any = None
        self.cond: Mapping[str, Any] = {}
        self.uncond: Mapping[str, Any] = {}
        self.stash: tuple[Any, Any, Any] | None = None  # (hidden_states, timestep, unconditional output)

    def new_forward(self, module: Any, *args: Any, **kwargs: Any) -> Any:
        del module
        if self.stash is not None and self._is_uncond(kwargs):
            output, self.stash = self.stash[2], None
            return output
        if args or not self.cond or not all(kwargs.get(k) is v for k, v in self.cond.items()):
            return self.fn_ref.original_forward(*args, **kwargs)
        batch = kwargs["hidden_states"].shape[0]
        both = self.fn_ref.original_forward(**{k: self._pair(k, v, batch) for k, v in kwargs.items()})
        self.stash = (kwargs["hidden_states"], kwargs.get("timestep"), _half(both, slice(batch, None)))
        return _half(both, slice(0, batch))

    def _is_uncond(self, kwargs: Mapping[str, Any]) -> bool:
        assert self.stash is not None
        hidden, timestep, _ = self.stash
        same = kwargs.get("hidden_states") is hidden and kwargs.get("timestep") is timestep
        return same and all(kwargs.get(k) is v for k, v in self.uncond.items())

    def _pair(self, key: str, value: Any, batch: int) -> Any:
        """One argument for the batch [cond, uncond]: every tensor (and list) is batch-first."""
        import torch

        if key in self.uncond:
            return torch.cat([value, self.uncond[key]])
        if isinstance(value, torch.Tensor):
            if value.shape[0] != batch:
                raise RuntimeError(
                    f"cfg_batch cannot batch the transformer argument {key!r} {tuple(value.shape)}; "
                    "set cfg_batch = false for this model"
                )
            return torch.cat([value, value])
        if isinstance(value, list | tuple) and len(value) == batch:  # SkyReels' fps, one per sample
            return type(value)([*value, *value])
        return value

    def reset_state(self, module: Any) -> Any:
        self.stash = None
        return module


def _half(output: Any, part: slice) -> Any:
    """The rows `part` of a transformer's output (`return_dict=False`: a tuple; else `.sample`)."""
    if isinstance(output, tuple):
        return tuple(t[part] for t in output)
    return type(output)(sample=output.sample[part])


def hook_class() -> type:
    """`BatchedGuidance` as a diffusers `ModelHook`, so diffusers' hook registry chains and resets it."""
    model_hook = _hooks().ModelHook
    return type("BatchedGuidanceHook", (BatchedGuidance, model_hook), {})


def transformers_of(pipe: Any) -> list[Any]:
    return [m for m in (getattr(pipe, name, None) for name in TRANSFORMERS) if m is not None]


def install(pipe: Any) -> None:
    """Hook every transformer of `pipe` (both Wan 2.2 experts), once. Install it before accelerate's
    model offload: offload re-wraps `forward` after each call and would drop a hook added after it."""
    registry = _hooks().HookRegistry
    for transformer in transformers_of(pipe):
        hooks = registry.check_if_exists_or_initialize(transformer)
        if hooks.get_hook(HOOK) is None:
            hooks.register_hook(hook_class()(), HOOK)


def installed(pipe: Any) -> bool:
    registry = _hooks().HookRegistry
    return all(
        registry.check_if_exists_or_initialize(t).get_hook(HOOK) is not None for t in transformers_of(pipe)
    )


@contextmanager
def batched(pipe: Any, *, cond: Mapping[str, Any], uncond: Mapping[str, Any]) -> Iterator[None]:
    """Arm the hooks of `pipe`'s transformers for one pipeline call; disarmed (and emptied) after it."""
    registry = _hooks().HookRegistry
    hooks = [registry.check_if_exists_or_initialize(t).get_hook(HOOK) for t in transformers_of(pipe)]
    for hook in hooks:
        hook.cond, hook.uncond, hook.stash = cond, uncond, None
    try:
        yield
    finally:
        for hook in hooks:
            hook.cond, hook.uncond, hook.stash = {}, {}, None


def _hooks() -> Any:
    return importlib.import_module("diffusers.hooks")
