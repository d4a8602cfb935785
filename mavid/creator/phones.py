"""The phone track: which phoneme sounds in each audio token frame (25 Hz).

Why: the paper's AR decoder learns to align speech to text from data at scale. At the tiny
preset's budget (an hour of 2 CPU cores) it does not: after 1,000 steps its loss was the same
with the right text, another clip's text or none (4.41 / 4.42 / 4.45), i.e. it had learned an
audio language model and ignored the words. So mavid-tiny also reads a frame-aligned phone
track, added to each audio column's input, from espeak-ng's front end (grapheme-to-phoneme and
durations, as Piper- or Kokoro-style TTS front ends use espeak-ng). The AR decoder still makes
every code: the track says what to say and when; voice, loudness and prosody come from the
model and the previous clip. `CreatorConfig.phone_track=False` (the paper preset) drops it.

- Training: the track of the world's own timing (the answer re-synthesised with its voice,
  which is deterministic, so the track matches the audio frame for frame).
- Inference: `PhonePlanner` turns each clip prompt into a track with espeak-ng's default voice
  and queues it; a clip takes the next F frames, so a prompt longer than its clip carries over
  to the next one and `pending_frames` tells the caller that speech is still queued.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from mavid.data.speech import PhonemeTiming, Voice, synthesize

PHONE_VOCAB = 512  # 0 = silence; phonemes hash into 1..511 (espeak-ng's inventory is < 200)
MAX_PHONE_POS = 8  # frames since the phone started, capped (its shape changes over time)
NO_TRACK = -1  # phone id of "no track at all" (embeds to zero): phone guidance's other branch
_SENTENCE_END = tuple(".!?")
_PHRASE_END = tuple(",;:")


def phone_id(ipa: str) -> int:
    """Stable id of one espeak-ng phoneme mnemonic (the same in every process)."""
    return 1 + zlib.crc32(ipa.encode("utf-8")) % (PHONE_VOCAB - 1)


def phone_track(phonemes: Sequence[PhonemeTiming], num_frames: int, fps: int) -> np.ndarray:
    """(num_frames, 2) int64: [phone id, frames since it started] of the phoneme sounding at
    each frame's centre (0, 0 where none does)."""
    track = np.zeros((num_frames, 2), np.int64)
    centres = (np.arange(num_frames) + 0.5) / fps
    for p in phonemes:
        inside = np.nonzero((centres >= p.start) & (centres < p.end))[0]
        if inside.size:
            track[inside, 0] = phone_id(p.ipa)
            track[inside, 1] = np.minimum(np.arange(inside.size), MAX_PHONE_POS - 1)
    return track


def without_track(track: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    """(B, F, 2) tracks with the items where `rows` (B,) is True marked NO_TRACK."""
    if track is None:
        return None
    track = track.clone()
    track[rows] = NO_TRACK
    return track


class PhonePlanner:
    """Per stream: clip prompts in, frame-aligned phone tracks out (see the module doc)."""

    def __init__(self, fps: int, voice: Voice | None = None, max_pending_s: float = 30.0):
        self.fps = fps
        self.voice = voice or Voice()
        self.max_pending = int(max_pending_s * fps)
        self._queue = np.zeros((0, 2), np.int64)

    @property
    def pending_frames(self) -> int:
        """Frames of speech queued but not yet given to a clip."""
        return int(np.count_nonzero(self._queue[:, 0]))

    def push(self, text: str) -> None:
        words = text.strip()
        if not words:
            return
        utt = synthesize(words, self.voice, sample_rate=16_000)
        track = phone_track(utt.phonemes, int(np.ceil(utt.duration * self.fps)), self.fps)
        voiced = np.nonzero(track[:, 0])[0]
        if voiced.size == 0:
            return
        # espeak pads every utterance with silence: keep one frame, then the pause the
        # punctuation asks for, so clip prompts join like one sentence
        pause = 6 if words.endswith(_SENTENCE_END) else 3 if words.endswith(_PHRASE_END) else 1
        track = track[max(0, voiced[0] - 1) : voiced[-1] + 1]
        track = np.concatenate([track, np.zeros((pause, 2), np.int64)])
        self._queue = np.concatenate([self._queue, track])[-self.max_pending :]

    def take(self, num_frames: int) -> np.ndarray:
        """The next (num_frames, 2) frames of the track; silence when the queue runs dry."""
        out = np.zeros((num_frames, 2), np.int64)
        n = min(num_frames, self._queue.shape[0])
        out[:n] = self._queue[:n]
        self._queue = self._queue[n:]
        return out

    def clear(self) -> None:
        self._queue = np.zeros((0, 2), np.int64)
