"""The built-in model's backend: the shipped VideoDiT sampled with x-prediction Euler steps.

It maps a segment onto tensors (caption ids, a mask channel for given frames, seeded noise per
candidate), runs the denoising loop as numbered steps, and returns uint8 frames. Guidance batches the
conditional and the unconditional (or negative-prompt) pass into one forward.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch

from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.backends.builtin_weights import DEFAULT_WEIGHTS, load_model, read_card
from kinema.errors import Cancelled, InvalidRequest
from kinema.models.allocator import reuse_freed_memory
from kinema.models.dit import TextContext, VideoDiT
from kinema.sampling.flow import euler_step, guide, timesteps
from kinema.spec import Capabilities
from kinema.world.captions import tokenize_batch
from kinema.world.scene import CANVASES, FPS

WINDOW = 16  # frames the network sees at once
CONTEXT = 8  # tail frames that condition a continuation (one temporal token)


class BuiltinBackend:
    """Kinema's own small video model; runs offline on a CPU."""

    def __init__(
        self,
        model: str = "builtin",
        *,
        weights: Path = DEFAULT_WEIGHTS,
        device: str = "cpu",
        shift: float = 1.0,
        net: VideoDiT | None = None,
    ) -> None:
        self.model = model
        self.weights = weights
        self.device = torch.device(device)
        self.shift = shift
        self._net = net
        self._text_memo: tuple[tuple[tuple[int, ...], bytes], TextContext] | None = None

    @property
    def net(self) -> VideoDiT:
        """The network, loaded on first use so that listing models stays cheap."""
        if self._net is None:
            if self.device.type == "cpu":
                reuse_freed_memory()  # no page faults for each forward's fresh activations
            net = load_model(self.weights).to(self.device)
            # The refinement head's 3x3 convolutions run ~3x faster channels-last on the CPU.
            self._net = net.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
        return self._net

    def capabilities(self) -> Capabilities:
        return Capabilities(
            model=self.model,
            family="builtin",
            kinds=frozenset({"text2video", "image2video", "extend", "text2image"}),
            first_last_frame=True,
            canvases=dict(CANVASES),  # type: ignore[arg-type]
            size_multiple=3,
            fps=FPS,
            frame_multiple=8,
            max_frames=WINDOW,
            context_frames=CONTEXT,
            steps={"std": 12, "pro": 24},
            guidance=4.0,
            guidance_range=(1.0, 12.0),
            description=self._describe(),
        )

    def _describe(self) -> str:
        try:
            training = read_card(self.weights).get("training", {})
        except Exception:
            return "built-in shapes-world model (weights missing)"
        return (
            f"built-in shapes-world model, {training.get('steps', '?')} training steps "
            f"({training.get('minutes', '?')} CPU-minutes)"
        )

    @torch.no_grad()
    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        self._check_size(segment)
        net = self.net
        n, t, h, w = segment.n, segment.num_frames, segment.height, segment.width
        # 1. Text: the prompt for every candidate, then the negative prompt (or the null caption).
        guided = segment.guidance_scale != 1.0
        prompts: list[str | None] = [segment.prompt] * n
        if guided:
            prompts += [segment.negative_prompt or ""] * n
        text = self._encoded(net, tokenize_batch(prompts))  # the same for every step
        # 2. Given frames enter clean, flagged by the mask channel.
        clean = torch.zeros(n, 3, t, h, w, device=self.device)
        mask = torch.zeros(n, 1, t, h, w, device=self.device)
        for index, frames in segment.given.items():
            clean[:, :, index] = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2) / 127.5 - 1.0
            mask[:, :, index] = 1.0
        # 3. Seeded noise, one generator per candidate so draw i equals a single draw with seed i.
        x = torch.stack(
            [torch.randn(3, t, h, w, generator=torch.Generator().manual_seed(seed)) for seed in segment.seeds]
        ).to(self.device)
        # 4. Denoise from t=1 to t=0; what every step shares is computed once.
        batch = 2 if guided else 1
        given, free = mask * clean, 1.0 - mask
        masks = mask.repeat(batch, 1, 1, 1, 1)
        x_in = torch.empty(batch * n, 3, t, h, w, device=self.device)  # both guidance halves
        levels = timesteps(segment.num_inference_steps, shift=self.shift).tolist()
        for step, (level, level_next) in enumerate(itertools.pairwise(levels)):
            if should_stop():
                raise Cancelled("generation was cancelled")
            torch.addcmul(given, free, x, out=x_in[:n])
            if guided:
                x_in[n:] = x_in[:n]
            pred = net(x_in, masks, torch.full((batch * n,), level, device=self.device), text=text)
            x0 = guide(pred[:n], pred[n:], segment.guidance_scale) if guided else pred
            x0 = torch.addcmul(given, free, x0.clamp_(-1.0, 1.0))
            x = euler_step(x, x0, level, level_next)
            on_step(step + 1, segment.num_inference_steps, _to_uint8(x0[0, :, t // 2]))
        # 5. Back to pixels, given frames exactly as given.
        out = _to_uint8(mask * clean + (1.0 - mask) * x).reshape(n, t, h, w, 3)
        for index, frames in segment.given.items():
            out[:, index] = frames
        return out

    def _encoded(self, net: VideoDiT, ids: np.ndarray) -> TextContext:
        """The captions' encoding, remembered for the next call: every segment of a long video (and every
        candidate batch of a request) asks for the same captions."""
        key = (ids.shape, ids.tobytes())
        memo = self._text_memo
        if memo is not None and memo[0] == key:
            return memo[1]
        text = net.encode_text(torch.from_numpy(ids).to(self.device))
        self._text_memo = (key, text)
        return text

    def _check_size(self, segment: Segment) -> None:
        pt, ph, pw = self.net.config.patch
        gt, gh, gw = self.net.config.max_grid
        if segment.num_frames % pt or segment.num_frames > pt * gt:
            raise InvalidRequest(
                f"the built-in model makes 8 or 16 frames per segment, not {segment.num_frames}"
            )
        if segment.height % ph or segment.width % pw or segment.height > ph * gh or segment.width > pw * gw:
            raise InvalidRequest(
                f"the built-in model draws at most {ph * gh}x{pw * gw} pixels in multiples of 3; "
                f"got {segment.height}x{segment.width} (leave height/width unset to use its canvases)"
            )


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(..., 3, [T,] H, W) in [-1, 1] -> (..., [T,] H, W, 3) uint8."""
    x = ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    dims = list(range(x.dim()))
    channel = 1 if x.dim() == 5 else 0
    order = [d for d in dims if d != channel] + [channel]
    return x.permute(*order).cpu().numpy()
