"""Cutting audio to whole token frames, shared by the codecs."""

from __future__ import annotations

import torch


def trim_to_frames(wave: torch.Tensor, hop_length: int) -> torch.Tensor:
    """(..., N) audio -> (..., N // hop * hop): a partial last frame is dropped."""
    n = wave.shape[-1] // hop_length * hop_length
    if n == 0:
        raise ValueError(f"audio of {wave.shape[-1]} samples is shorter than one frame")
    return wave[..., :n]
