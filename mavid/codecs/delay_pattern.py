"""The delay pattern across codebooks (higgs-audio v2 / MusicGen), per clip.

Matches transformers' `HiggsAudioV2Processor.build_delay_pattern` / `revert_delay_pattern`
exactly (tests compare against them); ours works on one (K, T) clip and on torch or numpy-free
tensors, and adds the per-clip [stream_bos, codes..., stream_eos] wrapping.
"""

from __future__ import annotations

import torch


def build_delay_pattern(codes: torch.Tensor, bos: int, eos: int) -> torch.Tensor:
    """(..., K, T) -> (..., K, T + K - 1): codebook k shifted right by k, bos before, eos after."""
    *lead, k, t = codes.shape
    length = t + k - 1
    out = torch.empty((*lead, k, length), dtype=codes.dtype, device=codes.device)
    for i in range(k):
        out[..., i, :i] = bos
        out[..., i, i : i + t] = codes[..., i, :]
        out[..., i, i + t :] = eos
    return out


def revert_delay_pattern(delayed: torch.Tensor) -> torch.Tensor:
    """(..., K, L) -> (..., K, L - K + 1): row k sliced to [k : L - K + 1 + k]."""
    k, length = delayed.shape[-2:]
    if length < k - 1:
        raise ValueError(f"delayed codes of length {length} are shorter than K - 1 = {k - 1}")
    t = length - k + 1
    return torch.stack([delayed[..., i, i : i + t] for i in range(k)], dim=-2)


def wrap_clip(codes: torch.Tensor, bos: int, eos: int) -> torch.Tensor:
    """(K, T) clip codes -> (K, T + 2 + K - 1): [stream_bos, codes..., stream_eos], delayed."""
    bos_col = torch.full((*codes.shape[:-1], 1), bos, dtype=codes.dtype, device=codes.device)
    eos_col = torch.full((*codes.shape[:-1], 1), eos, dtype=codes.dtype, device=codes.device)
    wrapped = torch.cat([bos_col, codes, eos_col], dim=-1)
    return build_delay_pattern(wrapped, bos, eos)


def unwrap_clip(delayed: torch.Tensor) -> torch.Tensor:
    """Inverse of `wrap_clip`: (K, T + K + 1) -> (K, T)."""
    return revert_delay_pattern(delayed)[..., 1:-1]


def data_mask(num_codebooks: int, num_frames: int) -> torch.Tensor:
    """(K, T + K + 1) bool: True where a wrapped, delayed clip holds a real code (not bos/eos)."""
    length = num_frames + num_codebooks + 1
    col = torch.arange(length)[None, :]
    k = torch.arange(num_codebooks)[:, None]
    w = col - k  # index into [bos, codes..., eos]
    return (w >= 1) & (w <= num_frames)
