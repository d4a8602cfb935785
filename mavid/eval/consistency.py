"""Subject consistency (the same person across frames and clips) and a dynamic degree.

VBench measures subject consistency with DINO features; no such model ships offline here, so
the identity embedding is handcrafted and robust to what legitimately changes while a person
talks (mouth, blinks, small head moves): a colour histogram (skin, hair, clothes, scene) plus a
blurred 8x8 colour layout, centred on the world's mean embedding so that two different people
score near 0 and the same person near 1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mavid.data.faces import render_reference_face, sample_identity

__all__ = [
    "DYNAMIC_THRESHOLD",
    "ConsistencyResult",
    "DynamicResult",
    "dynamic_degree",
    "identity_embedding",
    "subject_consistency",
]

_LEVELS = 6  # colour quantisation levels per channel for the histogram
# A clip is "dynamic" when its strongest frame-to-frame change (95th percentile of the mean
# absolute difference, 0..1 scale) exceeds this. On the world's ground truth talking alone peaks
# at 0.005-0.011, nods at 0.012-0.029, shakes and waves mostly above 0.011; slow tilts and
# look-aways stay under it (they move little per frame).
DYNAMIC_THRESHOLD = 0.012


def _raw_embedding(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, D) float32, not centred."""
    f = frames.astype(np.float32) / 255.0
    n, h, w, _ = f.shape
    q = np.minimum((f * _LEVELS).astype(np.int64), _LEVELS - 1)
    idx = (q[..., 0] * _LEVELS + q[..., 1]) * _LEVELS + q[..., 2]  # (F, H, W)
    hist = np.stack([np.bincount(i.ravel(), minlength=_LEVELS**3) for i in idx]).astype(np.float32)
    hist = np.sqrt(hist / (h * w))  # Hellinger: big regions do not drown small ones
    k = h // 8
    layout = f[:, : k * 8, : (w // 8) * 8].reshape(n, 8, k, 8, w // 8, 3).mean(axis=(2, 4))
    return np.concatenate([hist, 0.7 * layout.reshape(n, -1)], axis=1)


@functools.lru_cache(maxsize=1)
def _world_mean() -> np.ndarray:
    rng = np.random.default_rng(20_240_601)
    refs = np.stack([render_reference_face(sample_identity(rng)) for _ in range(48)])
    return _raw_embedding(refs).mean(axis=0)


def identity_embedding(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, D) unit-norm embeddings, centred on the world's mean face."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (F, H, W, 3) frames, got {frames.shape}")
    e = _raw_embedding(frames) - _world_mean()
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-8)


@dataclass(frozen=True)
class ConsistencyResult:
    frames: float  # VBench-style: mean of (cos to first frame + cos to previous frame) / 2
    clips: float  # mean cos of each clip's mean embedding to the first clip's (1.0 for one clip)
    worst_clip: float  # the lowest of those clip similarities
    per_clip: tuple[float, ...]


def subject_consistency(
    clips: Sequence[np.ndarray], reference: np.ndarray | None = None
) -> ConsistencyResult:
    """Consistency over the clips of one answer (each (F, H, W, 3) uint8).

    With a `reference` image (H, W, 3), clip similarities are taken to it instead of clip 0.
    """
    clips = [c for c in clips if len(c)]
    if not clips:
        raise ValueError("subject_consistency needs at least one non-empty clip")
    allf = np.concatenate(clips)
    e = identity_embedding(allf)  # (F, D)
    to_first = e @ e[0]
    to_prev = np.concatenate([[1.0], np.sum(e[1:] * e[:-1], axis=1)])
    frame_score = float(np.mean((to_first + to_prev) / 2))
    means, start = [], 0
    for c in clips:
        m = e[start : start + len(c)].mean(axis=0)
        means.append(m / max(np.linalg.norm(m), 1e-8))
        start += len(c)
    if reference is not None:
        anchor = identity_embedding(reference[None])[0]
        sims = [float(m @ anchor) for m in means]
    else:
        sims = [float(m @ means[0]) for m in means]
    others = sims if reference is not None else (sims[1:] or sims)
    return ConsistencyResult(
        frames=frame_score,
        clips=float(np.mean(others)),
        worst_clip=float(np.min(others)),
        per_clip=tuple(sims),
    )


@dataclass(frozen=True)
class DynamicResult:
    degree: float  # fraction of clips that are dynamic (VBench's dynamic degree)
    motion: float  # mean absolute frame difference, 0..1 scale, averaged over all frame pairs
    per_clip_peak: tuple[float, ...]


def dynamic_degree(
    clips: Sequence[np.ndarray], threshold: float = DYNAMIC_THRESHOLD
) -> DynamicResult:
    """How much the video moves: per clip, the 95th percentile of frame-to-frame change."""
    peaks, diffs = [], []
    for c in clips:
        if len(c) < 2:
            continue
        g = c.astype(np.float32).mean(axis=-1) / 255.0  # (F, H, W)
        d = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))  # (F-1,)
        diffs.append(d)
        peaks.append(float(np.percentile(d, 95)))
    if not peaks:
        raise ValueError("dynamic_degree needs a clip of at least 2 frames")
    return DynamicResult(
        degree=float(np.mean([p > threshold for p in peaks])),
        motion=float(np.concatenate(diffs).mean()),
        per_clip_peak=tuple(peaks),
    )
