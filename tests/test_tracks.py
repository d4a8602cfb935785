"""The outbound tracks take their timestamps from the shared clock: no drift between A and V."""

from __future__ import annotations

import asyncio
import fractions
import itertools

import numpy as np

from realtime.clock import MediaClock
from realtime.playout import PlayoutBuffer
from realtime.tracks import ClockedAudioTrack, ClockedVideoTrack

REF = np.full((8, 8, 3), 7, np.uint8)


async def test_audio_and_video_pts_share_one_timeline() -> None:
    playout = PlayoutBuffer(MediaClock(), REF)
    audio, video = ClockedAudioTrack(playout), ClockedVideoTrack(playout)
    a_frames, v_frames = [], []

    async def pull(track, out, n):
        for _ in range(n):
            out.append(await track.recv())

    await asyncio.gather(pull(audio, a_frames, 25), pull(video, v_frames, 13))
    assert a_frames[0].time_base == fractions.Fraction(1, 48_000)
    assert v_frames[0].time_base == fractions.Fraction(1, 90_000)
    assert all(f.samples == 960 and f.sample_rate == 48_000 for f in a_frames)
    assert [b.pts - a.pts for a, b in itertools.pairwise(a_frames)] == [960] * 24
    assert [b.pts - a.pts for a, b in itertools.pairwise(v_frames)] == [3600] * 12
    # both started on the same clock: their first timestamps agree within one frame
    a0, v0 = a_frames[0].pts / 48_000, v_frames[0].pts / 90_000
    assert abs(a0 - v0) <= 0.04
    # idle: silence and the reference face
    assert not a_frames[3].to_ndarray().any()
    assert (v_frames[3].to_ndarray(format="rgb24") == 7).all()
    audio.stop()
    video.stop()


async def test_a_clip_comes_out_on_both_tracks_together() -> None:
    playout = PlayoutBuffer(MediaClock(), REF)
    audio, video = ClockedAudioTrack(playout), ClockedVideoTrack(playout)
    await asyncio.gather(audio.recv(), video.recv())
    frames = np.full((5, 8, 8, 3), 200, np.uint8)
    scheduled = playout.push(np.full(5 * 1920, 1000, np.int16), frames)
    a_on = v_on = None
    for _ in range(30):
        a, v = await asyncio.gather(audio.recv(), audio.recv()), await video.recv()
        for f in a:
            if a_on is None and f.to_ndarray().any():
                a_on = f.pts / 48_000
        if v_on is None and v.to_ndarray(format="rgb24")[0, 0, 0] == 200:
            v_on = v.pts / 90_000
    assert a_on == v_on == scheduled.start_s
    audio.stop()
    video.stop()
