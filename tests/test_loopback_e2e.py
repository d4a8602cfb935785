"""End to end over real WebRTC on loopback: an aiortc client peer talks to the real tiny model."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
from conftest import loopback_config, running_server, speech_16k

from realtime.contrib.client import LoopbackPeer

LOUD = 0.003  # rms of a 20-ms frame; decoded silence is ~0


def loud_after(peer: LoopbackPeer, t: float) -> list[float]:
    return [ts for ts, rms in peer.received.audio if ts >= t and rms > LOUD]


async def test_spoken_question_gets_audio_and_video_answer(avatar_model) -> None:
    async with running_server(loopback_config(), avatar_model) as (url, _app):
        peer = LoopbackPeer()
        try:
            answer = await peer.connect(url)
            assert answer["type"] == "answer" and answer["session_id"]
            await peer.wait_channel_open()
            await peer.wait_event(lambda e: e["type"] == "state" and e["state"] == "listening")
            for _ in range(100):  # the idle face (the reference) is arriving
                if peer.received.thumbs:
                    break
                await asyncio.sleep(0.05)
            idle = peer.received.thumbs[-1]
            peer.say(speech_16k("Hello, can you tell me what time it is?"), 16_000)
            await peer.wait_event(lambda e: e["type"] == "state" and e["state"] == "thinking", 15)
            t_speak, _ = await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "speaking", 20
            )
            await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "listening", 30, after=2
            )
            states = [e["state"] for e in peer.events("state")]
            assert states == ["listening", "thinking", "speaking", "listening"]
            assert len(loud_after(peer, t_speak)) >= 10  # >= 0.2 s of the avatar's voice
            # the face moves: frames differ from the idle face and from one another
            # (thumbnail differences, so codec noise on a still picture does not count)
            during = [
                thumb
                for (t, _), thumb in zip(peer.received.video, peer.received.thumbs, strict=True)
                if t >= t_speak
            ]
            assert sum(float(np.abs(f - idle).mean()) > 4 for f in during) >= 5
            steps = [float(np.abs(b - a).mean()) for a, b in itertools.pairwise(during)]
            assert sum(step > 1.0 for step in steps) >= 5
            clips = peer.events("clip")
            assert [c["index"] for c in clips] == list(range(len(clips)))
            assert 1 <= len(clips) <= 3 and clips[0]["duration"] == 13 / 25
            assert peer.events("directive")
            # the outbound streams kept flowing on one clock: ~50 audio / 25 video frames per s
            span = peer.received.audio[-1][0] - peer.received.audio[0][0]
            assert len(peer.received.audio) > 0.8 * 50 * span
        finally:
            await peer.close()


async def test_barge_in_stops_avatar_audio(avatar_model) -> None:
    cfg = loopback_config(max_answer_clips=8)
    async with running_server(cfg, avatar_model) as (url, _app):
        peer = LoopbackPeer(send_video=False)
        try:
            await peer.connect(url)
            await peer.wait_channel_open()
            peer.send({"type": "text", "text": "tell me a long story"})
            t_speak, _ = await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "speaking", 20
            )
            await asyncio.sleep(0.8)
            assert loud_after(peer, t_speak)
            n = len(peer.received.events)
            peer.say(speech_16k("Stop. Wait a moment."), 16_000)
            t_cut, cut = await peer.wait_event(lambda e: e["type"] == "barge_in", 10, after=n)
            assert cut["reason"] == "speech"
            await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "listening", 5, after=n
            )
            # the new turn ("stop, wait a moment") is answered later; until then: silence
            t_next, _ = await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "speaking", 20, after=n
            )
            loud = [t for t in loud_after(peer, t_cut + 0.3) if t < t_next]
            assert loud == [], f"avatar still audible {loud[-1] - t_cut:.2f} s after barge-in"
        finally:
            await peer.close()
