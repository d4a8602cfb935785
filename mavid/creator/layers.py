"""Shared building blocks: rotary embeddings, attention with q/k RMSNorm, feed-forward."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def rope_angles(positions: torch.Tensor, dim: int, theta: float = 10_000.0) -> torch.Tensor:
    """(L,) positions -> (L, dim / 2) angles."""
    freqs = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device) / dim)
    return positions.float()[:, None] * freqs[None, :]


def rope_3d(t: int, h: int, w: int, head_dim: int, t_offset: int = 0) -> torch.Tensor:
    """Wan-style 3-D rotary angles for a (t, h, w) token grid -> (t*h*w, head_dim / 2)."""
    dh = dw = 2 * (head_dim // 6)
    dt = head_dim - dh - dw
    grid_t = torch.arange(t_offset, t_offset + t)
    at = rope_angles(grid_t, dt)[:, None, None, :].expand(t, h, w, -1)
    ah = rope_angles(torch.arange(h), dh)[None, :, None, :].expand(t, h, w, -1)
    aw = rope_angles(torch.arange(w), dw)[None, None, :, :].expand(t, h, w, -1)
    return torch.cat([at, ah, aw], dim=-1).reshape(t * h * w, head_dim // 2)


def rope_cos_sin(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, H, L, hd) rotated pairwise by (L, hd / 2) cos/sin."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


class Attention(nn.Module):
    """Multi-head attention with q/k RMSNorm; keys/values may come from another modality."""

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_dim: int | None = None,
        eps: float = 1e-6,
        qk_norm: bool = True,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.o = nn.Linear(dim, dim)
        # Wan normalises q/k; the Qwen2.5 Talker does not (and its per-token cost matters)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=eps) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(self.head_dim, eps=eps) if qk_norm else nn.Identity()

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape  # (B, L, D) -> (B, H, L, hd)
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def project_q(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_norm(self.split(self.q(x)))

    def project_kv(self, ctx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.k_norm(self.split(self.k(ctx))), self.split(self.v(ctx))

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        b, _, n, _ = out.shape
        return self.o(out.transpose(1, 2).reshape(b, n, -1))  # (B, L, D)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x), approximate="tanh"))


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of flow-matching times in [0, 1] (scaled to 0..1000 like Wan)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)
