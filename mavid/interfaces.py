"""The seams between the model and the rest of the agent.

`agent/` and `realtime/` rely on these types only; `mavid/` implements them. Everything
here is plain data or a small protocol so that the realtime side never imports torch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class Cancelled(Exception):
    """Raised inside model work when its CancelToken was set."""


class CancelToken:
    """A thread-safe flag that model work checks between steps (tokens, denoising steps)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class MediaSpec:
    """Sample rates, sizes and clip timing of a model preset (see mavid/config.py)."""

    audio_sample_rate: int = 24_000
    audio_token_rate: int = 25  # audio token frames per second
    num_codebooks: int = 8
    codebook_size: int = 1024
    fps: int = 25
    height: int = 128
    width: int = 128
    clip_frames: int = 25  # 1 + 4k frames: 1.0 s at 25 fps
    first_clip_frames: int = 13  # the first clip of a turn is shorter, to answer sooner
    temporal_compression: int = 4
    spatial_compression: int = 8

    def samples_for_frames(self, num_frames: int) -> int:
        """Audio samples that span `num_frames` video frames exactly."""
        return num_frames * self.audio_sample_rate // self.fps


@dataclass(frozen=True)
class AVClip:
    """One generated clip: audio and video of the same span, audio first sample = first frame."""

    index: int  # position in its CreatorStream, from 0
    audio: np.ndarray  # (N,) float32 in [-1, 1], mono, N == spec.samples_for_frames(F)
    sample_rate: int
    frames: np.ndarray  # (F, H, W, 3) uint8 RGB
    fps: int
    speech: str = ""  # the speech directive text this clip was made from
    motion: str = ""  # the motion directive text this clip was made from
    gen_seconds: float = 0.0  # wall time spent making it
    final: bool = False  # the audio decoder closed the utterance inside this clip

    @property
    def duration(self) -> float:
        return self.frames.shape[0] / self.fps


@dataclass(frozen=True)
class UserTurn:
    """What the Conductor hears and sees for one user turn (text first, then audio/video)."""

    text: str = ""
    audio: np.ndarray | None = None  # (N,) float32 mono at audio_sample_rate
    audio_sample_rate: int = 16_000
    video: tuple[np.ndarray, ...] = field(default_factory=tuple)  # (H, W, 3) uint8, oldest first
    video_fps: float = 2.0  # rate at which `video` frames were sampled


@dataclass(frozen=True)
class DirectiveDelta:
    """An increment of the Conductor's decoupled output (Eq. 3)."""

    speech: str = ""
    motion: str = ""


@runtime_checkable
class Conductor(Protocol):
    """Understands a user turn and streams speech / motion directives."""

    def stream(self, turn: UserTurn, cancel: CancelToken) -> Iterator[DirectiveDelta]:
        """Yield directive deltas as tokens are generated. Blocking: call from a worker thread.

        Raises Cancelled when `cancel` is set, and ConductorError on backend failure.
        """
        ...


@runtime_checkable
class HearingConductor(Conductor, Protocol):
    """A Conductor that writes a spoken turn down before it reads it (the tiny Thinker with its
    hearing), and says what it heard: `on_heard(words)` once, before the first delta, when a
    turn without text was heard to say something. (A Conductor that reads audio itself, e.g.
    a real Qwen2.5-Omni, has no words to report.)"""

    @property
    def hears(self) -> bool:
        """Whether spoken turns are written down (and reported through `on_heard`)."""
        ...

    def stream(
        self,
        turn: UserTurn,
        cancel: CancelToken,
        on_heard: Callable[[str], None] | None = None,
    ) -> Iterator[DirectiveDelta]: ...


@runtime_checkable
class UnderstandingConductor(Conductor, Protocol):
    """A Conductor that may read a turn as a question it knows (the tiny Thinker with its
    knowledge base), and says which: `on_understood(question)` once, before the first delta,
    when it read the turn's words as that question rather than as they were said or typed. (A
    caption of what the avatar answered, beside the words heard.)"""

    @property
    def understands(self) -> bool:
        """Whether turns may be read as known questions (reported through `on_understood`)."""
        ...

    def stream(
        self,
        turn: UserTurn,
        cancel: CancelToken,
        on_understood: Callable[[str], None] | None = None,
    ) -> Iterator[DirectiveDelta]: ...


@runtime_checkable
class CreatorStream(Protocol):
    """An open-ended sequence of clips, each conditioned on the previous one only."""

    spec: MediaSpec

    def next_clip(
        self,
        speech: str,
        motion: str,
        cancel: CancelToken | None = None,
        num_frames: int | None = None,
    ) -> AVClip:
        """Make the next clip. Blocking: call from a worker thread.

        Raises Cancelled if `cancel` is set between steps; the stream stays usable and the
        cancelled clip does not become history.
        """
        ...

    def reference_frame(self) -> np.ndarray:
        """The idle face, (H, W, 3) uint8 RGB."""
        ...


@runtime_checkable
class Creator(Protocol):
    spec: MediaSpec

    def new_stream(
        self, reference_image: np.ndarray | None = None, seed: int | None = None
    ) -> CreatorStream: ...


class ConductorError(RuntimeError):
    """The Conductor backend failed (remote endpoint error, model exception)."""
