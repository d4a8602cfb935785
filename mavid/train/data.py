"""Reading the synthetic world for training: samples, media checks, per-step batch picks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from mavid.data.dialogue import USER_SAMPLE_RATE, USER_VIDEO_FPS, DialogueSample
from mavid.data.shards import WorldDataset
from mavid.interfaces import MediaSpec, UserTurn


def iter_samples(
    root: Path, split: str = "train", limit: int | None = None
) -> Iterator[DialogueSample]:
    """The samples of one split of a built world, in manifest order (at most `limit`)."""
    dataset = WorldDataset(Path(root), split)
    if len(dataset) == 0:
        raise ValueError(f"the world in {root} has no {split!r} samples")
    for i, sample in enumerate(dataset):
        if limit is not None and i >= limit:
            return
        yield sample


def check_media(sample: DialogueSample, spec: MediaSpec) -> None:
    """The world must be rendered at the preset's media spec (size, fps, sample rate)."""
    _, h, w, _ = sample.frames.shape
    want = (spec.height, spec.width, spec.fps, spec.audio_sample_rate)
    got = (h, w, sample.fps, sample.sample_rate)
    if got != want:
        raise ValueError(
            f"sample {sample.plan.key}: world media (H, W, fps, rate) = {got}, the preset wants "
            f"{want}; build the world with the preset's MediaSpec"
        )


def user_turn(sample: DialogueSample) -> UserTurn:
    """What the Conductor receives for the sample's visitor turn, as realtime/ hands it over:
    typed turns as text, spoken turns as 16 kHz audio with no text, always the camera frames."""
    if sample.user_audio is None:
        return UserTurn(
            text=sample.question, video=tuple(sample.user_frames), video_fps=USER_VIDEO_FPS
        )
    return UserTurn(
        audio=sample.user_audio,
        audio_sample_rate=USER_SAMPLE_RATE,
        video=tuple(sample.user_frames),
        video_fps=USER_VIDEO_FPS,
    )


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The random source of one step: a pure function of (seed, step), so resume is exact."""
    return np.random.default_rng([seed, step, stream])


def pick(rng: np.random.Generator, n: int, batch_size: int) -> list[int]:
    """`batch_size` distinct indices of `n` items (with repeats only when n < batch_size)."""
    return [int(i) for i in rng.choice(n, batch_size, replace=n < batch_size)]


def nonempty(items: Iterable, what: str) -> list:
    out = list(items)
    if not out:
        raise ValueError(f"no {what} to train on")
    return out
