from __future__ import annotations

import av
import numpy as np
import pytest

from realtime.resample import InboundResampler, clip_audio_to_output


def test_clip_audio_is_exactly_the_frames_span_and_keeps_the_tone() -> None:
    t = np.arange(12_480) / 24_000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = clip_audio_to_output(tone, 24_000, 24_960)
    assert out.dtype == np.int16 and out.shape == (24_960,)
    spectrum = np.abs(np.fft.rfft(out[2000:22000].astype(np.float64)))
    peak_hz = np.argmax(spectrum) * 48_000 / 20_000
    assert abs(peak_hz - 440) < 5
    assert 0.3 < np.abs(out).max() / 32768 < 0.55


def test_clip_audio_rejects_nan() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        clip_audio_to_output(np.array([0.0, np.nan], np.float32), 24_000, 4)


def test_inbound_stereo_48k_becomes_16k_mono() -> None:
    resampler = InboundResampler()
    out = []
    for k in range(50):  # 1 s of opus-like stereo s16 frames
        t = (np.arange(960) + k * 960) / 48_000
        mono = (0.4 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.stack([mono, mono], axis=1).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 48_000
        frame.pts = k * 960
        out.append(resampler.resample(frame))
    audio = np.concatenate(out)
    assert audio.dtype == np.float32 and abs(audio.shape[0] - 16_000) < 64
    assert 0.3 < np.abs(audio[1000:]).max() < 0.45
