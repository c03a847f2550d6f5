"""The built-in video diffusion transformer (a small DiT with text cross-attention).

One network does text-to-video, image-to-video and continuation: every frame enters as noisy RGB plus
a mask channel, and frames that are given (a first frame, a last frame, the tail of an earlier clip)
enter clean with mask 1. The network predicts the clean clip (x-prediction). Tokens are 3D patches;
small per-frame convolutions after unpatchify refine edges across patch borders. Shapes use
B batch, C channels, T frames, H height, W width, N tokens, D width of the model, L text tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiTConfig:
    width: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    patch: tuple[int, int, int] = (4, 3, 3)  # (t, h, w) pixels per token
    in_channels: int = 4  # RGB + conditioning mask
    out_channels: int = 3
    max_grid: tuple[int, int, int] = (4, 16, 16)  # most tokens along (t, h, w)
    vocab_size: int = 68  # kinema.world.captions.VOCAB; checked when training starts
    max_text_tokens: int = 16
    text_width: int = 128
    text_depth: int = 2
    refine_channels: int = 16


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class TimestepEmbedder(nn.Module):
    """Sinusoidal embedding of the noise level t in [0, 1], then an MLP (DiT)."""

    def __init__(self, width: int, frequencies: int = 128) -> None:
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequencies // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
        args = 1000.0 * t[:, None].float() * freqs[None]  # (B, half)
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class TextEncoder(nn.Module):
    """Word embeddings and a small pre-norm transformer; returns per-token states and a pooled vector."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        w = config.text_width
        self.embed = nn.Embedding(config.vocab_size, w)
        self.pos = nn.Parameter(torch.zeros(config.max_text_tokens, w))
        layer = nn.TransformerEncoderLayer(
            w, nhead=4, dim_feedforward=4 * w, dropout=0.0, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, config.text_depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pad = ids == 0  # (B, L)
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        x = self.norm(self.layers(x, src_key_padding_mask=pad))  # (B, L, Dt)
        keep = (~pad).unsqueeze(-1).float()
        pooled = (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # (B, Dt)
        return x, pooled, pad


class Attention(nn.Module):
    """Multi-head attention with QK-norm: over `x` itself, or over the keys and values `kv` that
    `keys_values(context)` made of another sequence (the caption's, once per clip)."""

    def __init__(self, width: int, heads: int, context_width: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(context_width or width, 2 * width)
        self.out = nn.Linear(width, width)
        self.q_norm = nn.RMSNorm(width // heads)
        self.k_norm = nn.RMSNorm(width // heads)

    def keys_values(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normed keys and values of `src` (B, M, D), each (B, h, M, d/h)."""
        k, v = self.kv(src).view(src.shape[0], src.shape[1], 2, self.heads, -1).unbind(2)
        # QK-norm in fp32 (under bf16 autocast the projections arrive in bf16), applied before the
        # heads move forward: the norm's last axis is then contiguous, which the CPU kernel runs
        # faster; each row is normalised the same way, so the result is unchanged.
        return self.k_norm(k.float()).to(v.dtype).transpose(1, 2), v.transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        pad: torch.Tensor | None = None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.heads, -1)  # (B, N, h, d/h)
        k, v = self.keys_values(x) if kv is None else kv
        q = self.q_norm(q.float()).to(v.dtype).transpose(1, 2)  # (B, h, N, d/h)
        mask = None if pad is None else ~pad[:, None, None, :]  # True = attend
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


@dataclass(frozen=True)
class TextContext:
    """What a caption contributes to every forward, computed once per sampled clip: the pooled vector
    (projected to the model width), the padding mask and each block's cross-attention keys and values."""

    pooled: torch.Tensor  # (B, D)
    pad: torch.Tensor  # (B, L)
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per block, (B, h, L, d/h) each


class DiTBlock(nn.Module):
    """adaLN-zero self-attention and MLP around a text cross-attention (PixArt-alpha layout)."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        d = config.width
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(d, config.heads)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.cross = Attention(d, config.heads, context_width=config.text_width)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, pad: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=-1)  # (B, D) each
        x = x + gate1[:, None] * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + self.cross(self.norm2(x), pad=pad, kv=kv)
        return x + gate2[:, None] * self.mlp(modulate(self.norm3(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN, then a linear map from each token to its patch of pixels."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        d = config.width
        pt, ph, pw = config.patch
        self.norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.linear = nn.Linear(d, pt * ph * pw * config.out_channels)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.ada(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class VideoDiT(nn.Module):
    """x-prediction video DiT: (noisy clip + mask, t, caption ids) -> predicted clean clip."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        d = config.width
        pt, ph, pw = config.patch
        self.patch_embed = nn.Linear(pt * ph * pw * config.in_channels, d)
        gt, gh, gw = config.max_grid
        self.pos_t = nn.Parameter(torch.zeros(gt, d))
        self.pos_h = nn.Parameter(torch.zeros(gh, d))
        self.pos_w = nn.Parameter(torch.zeros(gw, d))
        self.t_embed = TimestepEmbedder(d)
        self.text = TextEncoder(config)
        self.text_pool = nn.Linear(config.text_width, d)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.final = FinalLayer(config)
        r = config.refine_channels
        # Per-frame 3x3 convolutions: cheap on a CPU (a 3x3x3 kernel costs 3x more for little gain).
        self.refine = nn.Sequential(
            nn.Conv3d(config.out_channels + config.in_channels, r, (1, 3, 3), padding=(0, 1, 1)),
            nn.SiLU(),
            nn.Conv3d(r, config.out_channels, (1, 3, 3), padding=(0, 1, 1)),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier linears, then adaLN-zero: every block starts as the identity, the output as zeros."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for p in (self.pos_t, self.pos_h, self.pos_w):
            nn.init.normal_(p, std=0.02)
        nn.init.normal_(self.text.embed.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.ada[-1].weight)
            nn.init.zeros_(block.ada[-1].bias)
            nn.init.zeros_(block.cross.out.weight)
        nn.init.zeros_(self.final.ada[-1].weight)
        nn.init.zeros_(self.final.ada[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def encode_text(self, ids: torch.Tensor) -> TextContext:
        """The caption's part of the forward; a sampler computes it once and passes it to every step."""
        text, pooled, pad = self.text(ids)  # (B, L, Dt), (B, Dt), (B, L)
        kv = tuple(cast(DiTBlock, block).cross.keys_values(text) for block in self.blocks)
        return TextContext(pooled=self.text_pool(pooled), pad=pad, kv=kv)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        t: torch.Tensor,
        ids: torch.Tensor | None = None,
        *,
        text: TextContext | None = None,
    ) -> torch.Tensor:
        """x (B, 3, T, H, W) in [-1, 1] with given frames clean; mask (B, 1, T, H, W); t (B,); and the
        caption as ids (B, L) or as `encode_text(ids)`."""
        pt, ph, pw = self.config.patch
        inp = torch.cat([x, mask], dim=1)  # (B, 4, T, H, W)
        b, c, frames, height, width = inp.shape
        gt, gh, gw = frames // pt, height // ph, width // pw
        tokens = inp.view(b, c, gt, pt, gh, ph, gw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
        tokens = self.patch_embed(tokens.reshape(b, gt * gh * gw, -1))  # (B, N, D)
        pos = self.pos_t[:gt, None, None] + self.pos_h[None, :gh, None] + self.pos_w[None, None, :gw]
        tokens = tokens + pos.reshape(1, gt * gh * gw, -1)
        if text is None:
            if ids is None:
                raise ValueError("VideoDiT.forward needs the caption: ids or text=encode_text(ids)")
            text = self.encode_text(ids)
        cond = self.t_embed(t) + text.pooled  # (B, D)
        for block, kv in zip(self.blocks, text.kv, strict=True):
            tokens = block(tokens, cond, text.pad, kv)
        out = self.final(tokens, cond)  # (B, N, pt*ph*pw*3)
        out = out.view(b, gt, gh, gw, -1, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
        out = out.reshape(b, -1, frames, height, width)  # (B, 3, T, H, W)
        both = torch.cat([out, inp], dim=1).contiguous(memory_format=torch.channels_last_3d)
        return out + self.refine(both)


PRESETS: dict[str, DiTConfig] = {
    "builtin-s": DiTConfig(patch=(8, 3, 3), max_grid=(2, 16, 16)),
    # Twice the temporal tokens of builtin-s (4 frames each, 576 per 16-frame window) at the same width:
    # the design a GPU run trains from scratch (docs/builtin-model.md, "Training on a GPU").
    "builtin-t4": DiTConfig(patch=(4, 3, 3), max_grid=(4, 16, 16)),
    "tiny": DiTConfig(
        patch=(8, 3, 3),
        max_grid=(2, 16, 16),
        width=32,
        depth=2,
        heads=2,
        text_width=32,
        text_depth=1,
        refine_channels=8,
    ),
}
