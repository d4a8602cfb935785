"""A small ring of recent inbound video frames, downscaled, for the Conductor."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import av
import numpy as np


@dataclass(frozen=True)
class VideoRingConfig:
    size: int = 8  # frames kept (4 s at 2 fps)
    sample_fps: float = 2.0  # keep at most this many frames per second of peer video
    max_side: int = 112  # longest side after downscaling


class VideoRing:
    def __init__(self, config: VideoRingConfig | None = None) -> None:
        self.config = config or VideoRingConfig()
        self._frames: collections.deque[np.ndarray] = collections.deque(maxlen=self.config.size)
        self._last_t: float | None = None

    def offer(self, frame: av.VideoFrame, t: float) -> bool:
        """Keep `frame` (arrived at time `t`, seconds) if it is due at the sampling rate."""
        if self._last_t is not None and t - self._last_t < 1.0 / self.config.sample_fps:
            return False
        self._last_t = t
        scale = self.config.max_side / max(frame.width, frame.height)
        width, height = frame.width, frame.height
        if scale < 1.0:
            # even sizes keep every pixel format's chroma planes whole
            width, height = (
                max(2, int(width * scale) // 2 * 2),
                max(2, int(height * scale) // 2 * 2),
            )
        self._frames.append(frame.reformat(width=width, height=height, format="rgb24").to_ndarray())
        return True

    def snapshot(self) -> tuple[np.ndarray, ...]:
        """Recent frames, oldest first: each (H, W, 3) uint8."""
        return tuple(self._frames)

    def __len__(self) -> int:
        return len(self._frames)
