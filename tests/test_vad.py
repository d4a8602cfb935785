"""silero-vad in streaming windows: start after min speech, end after the hangover."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import speech_16k

from realtime.vad import StreamingVad, VadConfig


def feed(vad: StreamingVad, audio: np.ndarray, chunk: int = 320) -> list:
    events = []
    for i in range(0, audio.shape[0], chunk):
        events += vad.process(audio[i : i + chunk])
    return events


def test_one_utterance_gives_one_start_and_one_end() -> None:
    speech = speech_16k("Good morning, could you help me with something?")
    silence = np.zeros(16_000, np.float32)
    vad = StreamingVad(VadConfig(hangover_ms=224))
    events = feed(vad, np.concatenate([silence, speech, silence]))
    events = [e for e in events if e.kind in ("start", "end")]
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert 0.9 < start.onset < 1.3  # speech begins after 1 s of silence
    assert start.at - start.onset >= 0.09  # min speech before deciding
    assert end.at - end.offset >= 0.22  # the hangover
    assert abs(end.offset - (1.0 + speech.shape[0] / 16_000)) < 0.4
    assert end.audio.shape[0] >= (end.offset - start.onset) * 16_000  # pre-roll + speech


def test_silence_and_noise_give_nothing() -> None:
    rng = np.random.default_rng(0)
    vad = StreamingVad()
    assert feed(vad, np.zeros(32_000, np.float32)) == []
    assert feed(vad, (0.001 * rng.standard_normal(32_000)).astype(np.float32)) == []


def test_longer_hangover_ends_later() -> None:
    audio = np.concatenate([np.zeros(8000, np.float32), speech_16k("Hello there."),
                            np.zeros(24_000, np.float32)])  # fmt: skip
    ends = []
    for hangover in (128, 512):
        events = feed(StreamingVad(VadConfig(hangover_ms=hangover)), audio)
        ends.append(next(e.at for e in events if e.kind == "end"))
    assert ends[1] - ends[0] > 0.3


def test_pause_comes_before_the_end_with_the_same_speech() -> None:
    audio = np.concatenate(
        [np.zeros(8000, np.float32), speech_16k("Hello there."), np.zeros(16_000, np.float32)]
    )
    events = feed(StreamingVad(VadConfig(pause_ms=64, hangover_ms=224)), audio)
    events = [e for e in events if e.kind not in ("onset", "onset_cancel")]
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-2:] == ["pause", "end"]
    # every pause but the last was followed by speech going on
    assert kinds[1:-2] == ["pause", "resume"] * ((len(kinds) - 3) // 2)
    pause, end = events[-2], events[-1]
    assert pause.offset == end.offset and end.at - pause.at >= 0.15
    assert np.array_equal(end.audio[: pause.audio.shape[0]], pause.audio)


def test_pause_disabled_or_as_long_as_hangover_gives_none() -> None:
    audio = np.concatenate([speech_16k("Hello there."), np.zeros(16_000, np.float32)])
    for cfg in (VadConfig(pause_ms=0), VadConfig(pause_ms=224, hangover_ms=224)):
        assert {e.kind for e in feed(StreamingVad(cfg), audio)} == {"onset", "start", "end"}


def test_onset_comes_first_and_a_too_short_run_is_withdrawn() -> None:
    speech = speech_16k("Hello there.")
    vad = StreamingVad(VadConfig(min_speech_ms=96))
    events = feed(vad, np.concatenate([np.zeros(8000, np.float32), speech]))
    onset, start = events[0], events[1]
    assert (onset.kind, start.kind) == ("onset", "start")
    assert start.at - onset.at == pytest.approx(0.064)  # two windows later
    # a run of speech windows shorter than min_speech: onset, then onset_cancel
    vad = StreamingVad(VadConfig(min_speech_ms=2000))
    kinds = [e.kind for e in feed(vad, np.concatenate([speech, np.zeros(16_000, np.float32)]))]
    assert kinds[:2] == ["onset", "onset_cancel"] and "start" not in kinds
