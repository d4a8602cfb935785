"""Outbound aiortc tracks that read the playout buffer on the session's media clock.

Each `recv()` returns the frame due now with a pts derived from the shared clock (audio in
1/48000, video in 1/90000), so the peer sees one timeline for both.
"""

from __future__ import annotations

import fractions

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from realtime.playout import AUDIO_FRAME_SAMPLES, PlayoutBuffer
from realtime.resample import OUT_RATE

VIDEO_CLOCK_RATE = 90_000
# If the loop fell this far behind, jump ahead instead of bursting stale frames
MAX_LAG_S = 0.5


class ClockedAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, playout: PlayoutBuffer) -> None:
        super().__init__()
        self._playout = playout
        self._k: int | None = None
        self._frame_s = AUDIO_FRAME_SAMPLES / OUT_RATE
        self.frames_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        clock = self._playout.clock
        now_k = int(clock.now() / self._frame_s)
        if self._k is None or now_k - self._k > MAX_LAG_S / self._frame_s:
            self._k = now_k
        await clock.sleep_until(self._k * self._frame_s)
        samples = self._playout.audio_frame(self._k)  # (960,) int16
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = OUT_RATE
        frame.pts = self._k * AUDIO_FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, OUT_RATE)
        self._k += 1
        self.frames_sent += 1
        return frame


class ClockedVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, playout: PlayoutBuffer) -> None:
        super().__init__()
        self._playout = playout
        self._n: int | None = None
        self._fps = playout.config.fps
        self.frames_sent = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        clock = self._playout.clock
        now_n = int(clock.now() * self._fps)
        if self._n is None or now_n - self._n > MAX_LAG_S * self._fps:
            self._n = now_n
        await clock.sleep_until(self._n / self._fps)
        frame = av.VideoFrame.from_ndarray(self._playout.video_frame(self._n), format="rgb24")
        frame.pts = self._n * VIDEO_CLOCK_RATE // self._fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._n += 1
        self.frames_sent += 1
        return frame
