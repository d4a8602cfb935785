"""The playout buffer: generated clips on one sample timeline, read by the outbound tracks.

The timeline is counted in 48-kHz output samples from the media clock's origin. A clip is
placed at a start sample aligned to both a 20-ms audio frame and a video frame, so frame i
of a clip and its audio begin at the same instant by construction. Whatever is not covered
by a clip is idle: silence and the reference face (or, inside an answer whose next clip is
late, the last face shown), so the stream never freezes or goes black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from realtime.clock import MediaClock
from realtime.resample import OUT_RATE

if TYPE_CHECKING:
    from mavid.interfaces import CreatorStream

AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz


@dataclass(frozen=True)
class PlayoutConfig:
    fps: int = 25
    lead_s: float = 0.02  # how far ahead of "now" a clip that arrives on an idle line starts
    stall_gap_s: float = 0.1  # a gap inside an answer longer than this counts as a stall
    keep_s: float = 1.0  # played clips are kept this long for late readers, then dropped


@dataclass(frozen=True)
class Scheduled:
    """Where a clip landed on the timeline (48-kHz samples from the clock origin)."""

    start: int
    end: int
    gap_s: float  # silence inserted before it inside the same answer (0 for a first clip)

    @property
    def start_s(self) -> float:
        return self.start / OUT_RATE

    @property
    def end_s(self) -> float:
        return self.end / OUT_RATE


@dataclass
class _Entry:
    start: int
    audio: np.ndarray  # (N,) int16 at 48 kHz
    frames: np.ndarray  # (F, H, W, 3) uint8

    @property
    def end(self) -> int:
        return self.start + self.audio.shape[0]


class PlayoutBuffer:
    """Per-session queue of clips; `audio_frame(k)` and `video_frame(n)` read it on the clock."""

    def __init__(
        self, clock: MediaClock, reference_frame: np.ndarray, config: PlayoutConfig | None = None
    ) -> None:
        self.clock = clock
        self.config = config or PlayoutConfig()
        if OUT_RATE % self.config.fps:
            raise ValueError(f"fps {self.config.fps} does not divide {OUT_RATE}")
        self._samples_per_frame = OUT_RATE // self.config.fps
        self._align = math.lcm(AUDIO_FRAME_SAMPLES, self._samples_per_frame)
        self.reference_frame = np.ascontiguousarray(reference_frame, dtype=np.uint8)
        self._entries: list[_Entry] = []
        self._end = 0  # end sample of the last scheduled clip
        self._in_answer = False
        self._last_face: np.ndarray | None = None
        self.stalls = 0
        self.muted = False  # audio reads as silence (the timeline goes on): a likely barge-in

    @classmethod
    def for_stream(cls, stream: CreatorStream) -> PlayoutBuffer:
        """A new session's buffer: its own clock, the stream's frame rate, its idle face."""
        return cls(MediaClock(), stream.reference_frame(), PlayoutConfig(fps=stream.spec.fps))

    @property
    def samples_per_frame(self) -> int:
        return self._samples_per_frame

    def now_sample(self) -> int:
        return int(self.clock.now() * OUT_RATE)

    @property
    def end_s(self) -> float:
        """Media time at which everything scheduled so far has played."""
        return self._end / OUT_RATE

    def queued_s(self) -> float:
        """Seconds of scheduled media not yet played."""
        return max(0.0, self.end_s - self.clock.now())

    def push(self, audio: np.ndarray, frames: np.ndarray) -> Scheduled:
        """Schedule a clip right after the previous one, or as soon as possible if late.

        `audio` is (N,) int16 at 48 kHz with N == F * 48000 / fps for `frames` (F, H, W, 3).
        """
        audio = np.ascontiguousarray(audio, dtype=np.int16).reshape(-1)
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ValueError(f"frames must be (F, H, W, 3) with F > 0, got {frames.shape}")
        if audio.shape[0] != frames.shape[0] * self._samples_per_frame:
            raise ValueError(
                f"audio has {audio.shape[0]} samples, {frames.shape[0]} frames need "
                f"{frames.shape[0] * self._samples_per_frame}"
            )
        earliest = self.now_sample() + int(self.config.lead_s * OUT_RATE)
        earliest = -(-earliest // self._align) * self._align  # round up to an A/V boundary
        gap_s = 0.0
        if self._in_answer and self._end > 0 and earliest > self._end:
            gap_s = (earliest - self._end) / OUT_RATE
            if gap_s > self.config.stall_gap_s:
                self.stalls += 1
        start = max(earliest, self._end) if self._in_answer else earliest
        self._in_answer = True
        self._prune()
        self._entries.append(_Entry(start, audio, frames))
        self._end = start + audio.shape[0]
        return Scheduled(start, self._end, gap_s)

    def end_answer(self) -> None:
        """The answer is complete; the next push starts a new one (no stall accounting)."""
        self._in_answer = False
        self.muted = False

    def flush(self) -> float:
        """Drop everything not yet played at once (barge-in). Returns the seconds dropped."""
        now = self.now_sample()
        dropped = max(0, self._end - now) / OUT_RATE
        self._entries = [e for e in self._entries if e.end <= now]
        self._end = min(self._end, now)
        self._in_answer = False
        self._last_face = None
        self.muted = False
        return dropped

    def _find(self, sample: int) -> _Entry | None:
        for entry in self._entries:
            if entry.start <= sample < entry.end:
                return entry
        return None

    def _prune(self) -> None:
        horizon = self.now_sample() - int(self.config.keep_s * OUT_RATE)
        if self._entries and self._entries[0].end < horizon:
            self._entries = [e for e in self._entries if e.end >= horizon]

    def audio_frame(self, k: int) -> np.ndarray:
        """The 20-ms frame k of the timeline: (960,) int16."""
        start = k * AUDIO_FRAME_SAMPLES
        out = np.zeros(AUDIO_FRAME_SAMPLES, dtype=np.int16)
        if self.muted:
            return out
        for entry in self._entries:
            lo, hi = max(start, entry.start), min(start + AUDIO_FRAME_SAMPLES, entry.end)
            if lo < hi:
                out[lo - start : hi - start] = entry.audio[lo - entry.start : hi - entry.start]
        return out

    def video_frame(self, n: int) -> np.ndarray:
        """Video frame n of the timeline: (H, W, 3) uint8."""
        sample = n * self._samples_per_frame
        entry = self._find(sample)
        if entry is not None:
            face = entry.frames[(sample - entry.start) // self._samples_per_frame]
            self._last_face = face
            return face
        if self._in_answer and self._last_face is not None:
            return self._last_face  # the next clip is late: hold the face, not the idle one
        return self.reference_frame

    def is_playing(self) -> bool:
        return self._end > self.now_sample()
