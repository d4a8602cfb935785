"""Scene ambience under the speech: procedural rain, hum, room tone, music bed and café.

Each bed is numpy noise shaped with simple filters, or a few tones, normalised to unit RMS so
the mixer sets its level in dB below the speech.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AMBIENCES", "ambience", "mix_under"]

AMBIENCES = ("silence", "rain", "hum", "room", "music", "cafe")


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    """A one-pole low-pass (coefficient `alpha`) applied in the frequency domain."""
    f = np.fft.rfftfreq(x.size)
    h = alpha / np.abs(1 - (1 - alpha) * np.exp(-2j * np.pi * f))
    return np.fft.irfft(np.fft.rfft(x) * h, x.size)


def _band(x: np.ndarray, lo: float, hi: float, sr: int) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, x.size)


def _unit(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
    return (x / rms).astype(np.float32) if rms > 1e-9 else x.astype(np.float32)


def ambience(kind: str, num_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A unit-RMS bed of `kind`, (num_samples,) float32 ("silence" is zeros)."""
    if kind not in AMBIENCES:
        raise ValueError(f"unknown ambience {kind!r}; one of {AMBIENCES}")
    if num_samples < 0:
        raise ValueError("num_samples must be >= 0")
    n, sr = num_samples, sample_rate
    t = np.arange(n) / sr
    if kind == "silence" or n == 0:
        return np.zeros(n, np.float32)
    if kind == "rain":
        # broadband hiss + sparse drops (short decaying clicks)
        x = _band(rng.standard_normal(n), 800, 9000, sr)
        drops = np.zeros(n)
        idx = rng.integers(0, n, max(1, int(n / sr * 40)))
        drops[idx] = rng.uniform(0.5, 3.0, idx.size)
        kernel = np.exp(-np.arange(int(0.01 * sr)) / (0.002 * sr))
        x = x + _band(np.convolve(drops, kernel)[:n], 500, 10000, sr) * 2
        return _unit(x)
    if kind == "hum":
        f0 = float(rng.choice([50.0, 60.0]))
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3, 5))
        return _unit(x + 0.05 * rng.standard_normal(n))
    if kind == "room":
        return _unit(_lowpass(rng.standard_normal(n), 0.02))
    if kind == "music":
        # a slow chord progression of soft sine triads, one chord per 2 s
        root = float(rng.uniform(180, 260))
        chords = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 3, 7)]
        x = np.zeros(n)
        seg = 2 * sr
        for c in range(0, n, seg):
            triad = chords[(c // seg) % len(chords)]
            tt = t[c : c + seg]
            env = np.minimum(1, np.minimum((tt - tt[0]) / 0.1 + 1e-9, (tt[-1] - tt + 1e-3) / 0.2))
            for semis in triad:
                x[c : c + seg] += np.sin(2 * np.pi * root * 2 ** (semis / 12) * tt) * env
        return _unit(x)
    # cafe: babble-like band noise with slow level changes + occasional cup clinks
    x = _band(rng.standard_normal(n), 200, 3000, sr)
    x *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 0.7) * t + rng.uniform(0, 6.3))
    for start in rng.integers(0, n, max(1, int(n / sr * 0.7))):
        m = min(n - start, int(0.15 * sr))
        tt = np.arange(m) / sr
        x[start : start + m] += (
            4 * np.sin(2 * np.pi * rng.uniform(2500, 4500) * tt) * np.exp(-tt / 0.03)
        )
    return _unit(x)


def mix_under(speech: np.ndarray, bed: np.ndarray, level_db: float) -> np.ndarray:
    """Speech plus the bed at `level_db` relative to the speech's RMS (e.g. -20), clipped to ±1."""
    if speech.shape != bed.shape:
        raise ValueError(f"speech {speech.shape} and bed {bed.shape} differ in shape")
    rms = float(np.sqrt(np.mean(speech**2))) if speech.size else 0.0
    gain = rms * 10 ** (level_db / 20) if rms > 0 else 10 ** (level_db / 20) * 0.1
    return np.clip(speech + gain * bed, -1, 1).astype(np.float32)
