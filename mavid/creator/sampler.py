"""Flow matching (rectified flow, velocity prediction) and a few-step Euler sampler with CFG.

x_t = (1 - t) x_0 + t ε, v = ε - x_0; sampling integrates dx/dt = v from t = 1 to t = 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch


def shifted_timesteps(steps: int, shift: float) -> list[float]:
    """steps + 1 times from 1 to 0, Wan/SD3-style shift toward the noisy end."""
    if steps < 1:
        raise ValueError(f"the sampler needs at least one step, got {steps}")
    out = []
    for i in range(steps + 1):
        t = 1.0 - i / steps
        out.append(shift * t / (1 + (shift - 1) * t))
    return out


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t for per-sample, per-latent times t (B, T) on latents (B, C, T, h, w)."""
    tt = t[:, None, :, None, None]
    return (1 - tt) * x0 + tt * noise


def euler_sample(
    velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    noise: torch.Tensor,
    steps: int,
    shift: float,
    fixed: torch.Tensor | None = None,
    check: Callable[[], None] = lambda: None,
) -> torch.Tensor:
    """Denoise (B, C, T, h, w) noise. `fixed` (B, C, T, h, w) with NaN where free: kept clean."""
    b, _, nt = noise.shape[:3]
    free = None
    if fixed is not None:
        free = torch.isnan(fixed[:, :1, :, :1, :1]).view(b, nt)  # (B, T) True where denoised
        fixed = torch.nan_to_num(fixed)
    x = noise
    times = shifted_timesteps(steps, shift)
    for t_now, t_next in itertools.pairwise(times):
        check()
        t = torch.full((b, nt), t_now, dtype=noise.dtype, device=noise.device)
        if free is not None:
            t = torch.where(free, t, torch.zeros_like(t))
            x = torch.where(free[:, None, :, None, None], x, fixed)
        x = x + (t_next - t_now) * velocity(x, t)
    if free is not None:
        x = torch.where(free[:, None, :, None, None], x, fixed)
    return x


def guided(
    cond: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    uncond: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scale: float,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Classifier-free guidance on the velocity; scale 1 is the conditional model alone."""
    if scale == 1.0:
        return cond

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_u = uncond(x, t)
        return v_u + scale * (cond(x, t) - v_u)

    return velocity
