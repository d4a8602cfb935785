"""Streaming voice activity detection with silero-vad (the model inside the wheel).

Feed 16-kHz mono audio in any chunk size; the detector runs silero on 512-sample windows
(32 ms) and turns probabilities into speech start / end events. Start needs
`min_speech_ms` of speech; end needs `hangover_ms` of silence. A shorter silence inside speech
gives "pause" (and "resume" if speech goes on), so an answer can be prepared during the
hangover instead of after it. The first speech window gives "onset" (withdrawn by
"onset_cancel" if the run is shorter than `min_speech_ms`), so the avatar can fall silent
before a barge-in is certain. Blocking (a torch call per
window): run `process()` in a worker thread.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from silero_vad import load_silero_vad

SAMPLE_RATE = 16_000
WINDOW = 512  # silero's window at 16 kHz


@dataclass(frozen=True)
class VadConfig:
    threshold: float = 0.5  # speech when the probability rises above this
    neg_threshold: float = 0.35  # silence when it falls below this (hysteresis)
    min_speech_ms: int = 96  # speech this long before "start" (3 windows)
    # silence this long before "end" (10 windows); espeak's comma pauses measure ~0.22 s
    hangover_ms: int = 320
    pre_roll_ms: int = 300  # audio kept before the start, so the turn has the first phoneme
    max_speech_s: float = 30.0  # a turn longer than this is ended anyway
    # silence this long inside speech emits "pause": the agent may start answering early and
    # only play the answer if the silence lasts the hangover ("resume" if speech goes on).
    # 0 disables.
    pause_ms: int = 64


@dataclass(frozen=True)
class VadEvent:
    kind: Literal["onset", "onset_cancel", "start", "pause", "resume", "end"]
    at: float  # stream time (s) when the event was decided
    onset: float  # stream time (s) when the speech began
    offset: float | None = None  # "pause"/"end": stream time (s) of the last speech window
    audio: np.ndarray | None = None  # "pause"/"end": (N,) float32 16 kHz, pre-roll + speech


class StreamingVad:
    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self._model = load_silero_vad()
        self._pending = np.zeros(0, dtype=np.float32)
        self._samples = 0  # samples consumed by windows so far
        self._speech_windows = 0  # consecutive speech windows (before "start")
        self._silence_windows = 0  # consecutive silence windows (while speaking)
        self._speaking = False
        self._onset = 0.0
        self._last_speech = 0.0
        self._pre_roll: collections.deque[np.ndarray] = collections.deque(
            maxlen=max(1, self.config.pre_roll_ms * SAMPLE_RATE // 1000 // WINDOW)
        )
        self._segment: list[np.ndarray] = []
        self._min_windows = max(1, self.config.min_speech_ms * SAMPLE_RATE // 1000 // WINDOW)
        self._hang_windows = max(1, self.config.hangover_ms * SAMPLE_RATE // 1000 // WINDOW)
        pause = self.config.pause_ms * SAMPLE_RATE // 1000 // WINDOW
        # a pause as long as the hangover is the end itself: no separate event
        self._pause_windows = pause if 0 < pause < self._hang_windows else -1
        self._paused = False

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def time(self) -> float:
        """Stream seconds consumed so far."""
        return self._samples / SAMPLE_RATE

    def reset(self) -> None:
        self._model.reset_states()
        self._speaking = self._paused = False
        self._speech_windows = self._silence_windows = 0
        self._segment = []
        self._pre_roll.clear()

    def probability(self, window: np.ndarray) -> float:
        with torch.inference_mode():
            return float(self._model(torch.from_numpy(window), SAMPLE_RATE).item())

    def process(self, audio: np.ndarray) -> list[VadEvent]:
        """Consume (N,) float32 16-kHz samples; return the events they complete."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        self._pending = np.concatenate([self._pending, audio])
        events: list[VadEvent] = []
        while self._pending.shape[0] >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            event = self._step(window, self.probability(window))
            if event is not None:
                events.append(event)
        return events

    def _step(self, window: np.ndarray, prob: float) -> VadEvent | None:
        cfg = self.config
        self._samples += WINDOW
        now = self._samples / SAMPLE_RATE
        if not self._speaking:
            self._pre_roll.append(window)
            before = self._speech_windows
            self._speech_windows = self._speech_windows + 1 if prob >= cfg.threshold else 0
            if self._speech_windows < self._min_windows:
                # the first speech window is a hint ("onset") that "start" may follow; a run
                # that stops short of min_speech is withdrawn ("onset_cancel")
                if before == 0 and self._speech_windows == 1:
                    return VadEvent("onset", at=now, onset=now - WINDOW / SAMPLE_RATE)
                if before > 0 and self._speech_windows == 0:
                    return VadEvent("onset_cancel", at=now, onset=now)
                return None
            self._speaking = True
            self._silence_windows = 0
            self._onset = now - self._speech_windows * WINDOW / SAMPLE_RATE
            self._last_speech = now
            self._segment = list(self._pre_roll)
            self._pre_roll.clear()
            return VadEvent("start", at=now, onset=self._onset)
        self._segment.append(window)
        if prob >= cfg.neg_threshold:
            self._silence_windows = 0
            self._last_speech = now
            if self._paused:
                self._paused = False
                return VadEvent("resume", at=now, onset=self._onset)
        else:
            self._silence_windows += 1
        too_long = now - self._onset >= cfg.max_speech_s
        if self._silence_windows < self._hang_windows and not too_long:
            if self._silence_windows == self._pause_windows and not self._paused:
                self._paused = True
                return VadEvent(
                    "pause",
                    at=now,
                    onset=self._onset,
                    offset=self._last_speech,
                    audio=np.concatenate(self._segment),
                )
            return None
        self._paused = False
        self._speaking = False
        self._speech_windows = 0
        audio = np.concatenate(self._segment)
        self._segment = []
        return VadEvent("end", at=now, onset=self._onset, offset=self._last_speech, audio=audio)
