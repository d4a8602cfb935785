"""Timbre consistency across the clips of one answer: resemblyzer speaker embeddings.

`resemblyzer` ships its GE2E speaker encoder's weights inside its wheel, so this runs offline.
It wants 16 kHz audio: clips are resampled with av first.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mavid.data.speech import resample

__all__ = ["TimbreMeter", "TimbreResult"]

ENCODER_SAMPLE_RATE = 16_000
MIN_VOICED_S = 0.3  # clips with less speech than this (after silence trimming) are skipped


@dataclass(frozen=True)
class TimbreResult:
    consistency: float  # mean pairwise cosine similarity of the clips' speaker embeddings
    worst: float  # lowest similarity of a clip to the centroid of the others
    per_clip: tuple[float, ...]  # each used clip's similarity to the centroid of the others
    clips_used: int


class TimbreMeter:
    """Loads the encoder once; `embed` and `consistency` are then cheap (~ms per clip)."""

    def __init__(self, device: str = "cpu") -> None:
        try:
            with warnings.catch_warnings():  # resemblyzer imports a deprecated scipy path
                warnings.simplefilter("ignore", DeprecationWarning)
                from resemblyzer import VoiceEncoder
        except ModuleNotFoundError as e:  # webrtcvad 2.0.10 imports pkg_resources
            raise RuntimeError(
                "resemblyzer failed to import; install the `train` extra (it pins "
                "webrtcvad-wheels, whose webrtcvad does not need pkg_resources)"
            ) from e
        from resemblyzer import preprocess_wav

        self._encoder = VoiceEncoder(device, verbose=False)
        self._preprocess = preprocess_wav

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
        """(N,) float32 -> (256,) unit embedding, or None when the clip holds too little speech."""
        wav = resample(np.asarray(audio, np.float32), sample_rate, ENCODER_SAMPLE_RATE)
        with np.errstate(divide="ignore", invalid="ignore"):  # silent input: log10(0)
            wav = self._preprocess(wav)  # volume normalisation + long-silence trimming
        if wav.size < MIN_VOICED_S * ENCODER_SAMPLE_RATE:
            return None
        return self._encoder.embed_utterance(wav)

    def consistency(self, clips: Sequence[np.ndarray], sample_rate: int) -> TimbreResult:
        """Timbre consistency over the audio clips of one answer (needs >= 2 voiced clips)."""
        embs = [e for e in (self.embed(c, sample_rate) for c in clips) if e is not None]
        if len(embs) < 2:
            raise ValueError(f"need at least 2 clips with speech, got {len(embs)}")
        e = np.stack(embs)  # (C, 256)
        sim = e @ e.T
        c = len(embs)
        pairwise = float((sim.sum() - np.trace(sim)) / (c * (c - 1)))
        per = []
        for i in range(c):
            rest = np.delete(e, i, axis=0).mean(axis=0)
            per.append(float(e[i] @ rest / max(np.linalg.norm(rest), 1e-8)))
        return TimbreResult(pairwise, float(min(per)), tuple(per), c)
