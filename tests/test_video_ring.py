from __future__ import annotations

import av
import numpy as np

from realtime.video_ring import VideoRing, VideoRingConfig


def frame(value: int, w: int = 640, h: int = 480) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((h, w, 3), value, np.uint8), format="rgb24")


def test_ring_samples_downscales_and_keeps_the_latest() -> None:
    ring = VideoRing(VideoRingConfig(size=3, sample_fps=2.0, max_side=112))
    kept = [ring.offer(frame(i), t=i * 0.1) for i in range(30)]  # 10 fps for 3 s
    assert sum(kept) == 6  # 2 fps
    frames = ring.snapshot()
    assert len(frames) == 3
    assert frames[0].shape == (84, 112, 3) and frames[0].dtype == np.uint8
    assert [int(f[0, 0, 0]) for f in frames] == [15, 20, 25]  # oldest first


def test_small_frames_are_not_upscaled() -> None:
    ring = VideoRing()
    ring.offer(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "rgb24"), 0.0)
    assert ring.snapshot()[0].shape == (48, 64, 3)
