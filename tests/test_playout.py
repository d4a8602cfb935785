"""The playout buffer: one sample timeline for audio and video, idle face, flush, stalls."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.clock import MediaClock
from realtime.playout import AUDIO_FRAME_SAMPLES, PlayoutBuffer, PlayoutConfig

REF = np.zeros((4, 4, 3), np.uint8)


class ManualTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def clip(n_frames: int, value: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Audio sample s of frame i carries i + value, so A/V alignment is checkable."""
    frames = np.stack([np.full((4, 4, 3), (i + value) % 256, np.uint8) for i in range(n_frames)])
    audio = np.repeat(np.arange(n_frames, dtype=np.int16) + value, 1920)
    return audio, frames


def buffer() -> tuple[PlayoutBuffer, ManualTime]:
    now = ManualTime()
    return PlayoutBuffer(MediaClock(now), REF), now


@settings(max_examples=50, deadline=None)
@given(
    starts=st.lists(st.floats(0, 3), min_size=1, max_size=4),
    lengths=st.lists(st.integers(1, 30), min_size=4, max_size=4),
)
def test_audio_and_video_of_a_clip_line_up(starts, lengths) -> None:
    playout, now = buffer()
    for i, start in enumerate(sorted(starts)):
        now.t = start
        audio, frames = clip(lengths[i], value=10 * (i + 1))
        scheduled = playout.push(audio, frames)
        assert scheduled.start % 1920 == 0  # on an audio-frame and a video-frame boundary
        first_frame = scheduled.start // 1920
        for j in range(lengths[i]):
            video = playout.video_frame(first_frame + j)
            k = (scheduled.start + j * 1920) // AUDIO_FRAME_SAMPLES
            assert playout.audio_frame(k)[0] == video[0, 0, 0]


def test_idle_is_reference_and_silence_then_clips_play_back_to_back() -> None:
    playout, _ = buffer()
    assert (playout.video_frame(3) == REF).all() and not playout.audio_frame(7).any()
    a = playout.push(*clip(13))
    b = playout.push(*clip(25, value=50))
    assert a.start == 1920  # the next boundary after now + lead
    assert b.start == a.end and b.gap_s == 0.0
    assert playout.end_s == pytest.approx((1920 + 38 * 1920) / 48_000)
    assert playout.video_frame(a.end // 1920)[0, 0, 0] == 50


def test_late_clip_inside_an_answer_counts_a_stall_and_holds_the_face() -> None:
    playout, now = buffer()
    first = playout.push(*clip(5))
    now.t = first.end_s + 0.05  # 50 ms late: a gap, not a stall
    assert playout.video_frame(first.end // 1920 - 1)[0, 0, 0] == 5  # its last frame shown
    assert playout.video_frame(first.end // 1920 + 1)[0, 0, 0] == 5  # last face held
    second = playout.push(*clip(5))
    assert 0 < second.gap_s <= 0.1 and playout.stalls == 0
    now.t = second.end_s + 0.3
    third = playout.push(*clip(5))
    assert third.gap_s > 0.1 and playout.stalls == 1
    playout.end_answer()
    now.t = third.end_s + 1.0
    playout.push(*clip(5))  # a new answer: its start is no stall
    assert playout.stalls == 1


def test_flush_drops_unplayed_media_at_once() -> None:
    playout, now = buffer()
    scheduled = playout.push(*clip(25))
    now.t = scheduled.start_s + 0.2
    dropped = playout.flush()
    assert dropped == pytest.approx(scheduled.end_s - now.t, abs=1e-3)
    k = int(now.t * 48_000) // AUDIO_FRAME_SAMPLES + 1
    assert not playout.audio_frame(k).any()
    assert (playout.video_frame(int(now.t * 25) + 1) == REF).all()
    assert not playout.is_playing() and playout.queued_s() == 0


def test_bad_clips_are_refused() -> None:
    playout, _ = buffer()
    audio, frames = clip(5)
    with pytest.raises(ValueError, match="samples"):
        playout.push(audio[:-1], frames)
    with pytest.raises(ValueError, match="frames"):
        playout.push(audio, frames[..., :1])
    with pytest.raises(ValueError, match="fps"):
        PlayoutBuffer(MediaClock(), REF, PlayoutConfig(fps=7))


def test_muted_audio_is_silent_while_the_timeline_goes_on() -> None:
    playout, _ = buffer()
    scheduled = playout.push(*clip(25))
    k = scheduled.start // AUDIO_FRAME_SAMPLES
    assert playout.audio_frame(k).any()
    playout.muted = True
    assert not playout.audio_frame(k).any()
    assert playout.video_frame(scheduled.start // 1920)[0, 0, 0] == 1  # video goes on
    playout.muted = False
    assert playout.audio_frame(k + 1).any()
    playout.muted = True
    playout.flush()  # a barge-in unmutes: the next answer is heard
    assert not playout.muted
    playout.muted = True
    playout.end_answer()
    assert not playout.muted
