"""Sample-rate conversion with `av.AudioResampler` (libswresample), never by hand."""

from __future__ import annotations

import av
import numpy as np

OUT_RATE = 48_000  # WebRTC / Opus rate of every outbound audio frame
IN_RATE = 16_000  # silero-vad and the Conductor's audio input


def _to_array(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, dtype=np.int16)
    # s16 packed mono: to_ndarray() is (1, N)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def clip_audio_to_output(audio: np.ndarray, sample_rate: int, num_samples: int) -> np.ndarray:
    """Resample one clip's mono float audio to 48 kHz int16 of exactly `num_samples`.

    A fresh resampler per clip, flushed at the end, so each clip's samples are complete and
    the clip's audio length stays tied to its frame count (the alignment of A and V).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise ValueError("clip audio has non-finite samples")
    resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
    frame = av.AudioFrame.from_ndarray(
        np.clip(audio, -1.0, 1.0)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = sample_rate
    out = _to_array(resampler.resample(frame) + resampler.resample(None))
    # libswresample's filter may leave a few samples more or less than the exact ratio
    if out.shape[0] >= num_samples:
        return out[:num_samples]
    return np.concatenate([out, np.zeros(num_samples - out.shape[0], dtype=np.int16)])


class InboundResampler:
    """Decoded peer audio (any rate, layout, format) -> 16 kHz mono float32, streaming."""

    def __init__(self, rate: int = IN_RATE) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def resample(self, frame: av.AudioFrame) -> np.ndarray:
        """(N,) float32 in [-1, 1]; may be empty while the resampler's filter fills."""
        # pts from the peer are irrelevant here and would make swr insert/drop samples
        frame.pts = None
        return _to_array(self._resampler.resample(frame)).astype(np.float32) / 32768.0
