"""End to end over real WebRTC on loopback: an aiortc client peer talks to the real tiny model."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import numpy as np
from conftest import loopback_config, running_server, speech_16k

from realtime.contrib.client import LoopbackPeer

LOUD = 0.003  # rms of a 20-ms frame; decoded silence is ~0


def loud_after(peer: LoopbackPeer, t: float) -> list[float]:
    return [ts for ts, rms in peer.received.audio if ts >= t and rms > LOUD]


async def next_state(peer: LoopbackPeer, after: int, within: float) -> tuple[float, str, int]:
    for _ in range(int(within / 0.02)):
        for i, (t, e) in enumerate(peer.received.events[after:], after):
            if e["type"] == "state":
                return t, e["state"], i
        await asyncio.sleep(0.02)
    raise AssertionError(f"no state event within {within} s: {peer.events()}")


async def ask(
    peer: LoopbackPeer, send: Callable[[], None], attempts: int = 3, min_words: int = 1
) -> float:
    """Send a turn until it is answered with at least `min_words` words of speech; returns
    when "speaking" arrived.

    With random weights the Conductor now and then says nothing (THINKING -> LISTENING) or
    next to nothing; that is the model's answer, not a plumbing failure, so the turn is
    asked again.
    """
    for _ in range(attempts):
        n = len(peer.received.events)
        send()
        while True:  # skip to this turn's "thinking"
            t, state, n = await next_state(peer, n, 20)
            n += 1
            if state == "thinking":
                break
        t, state, i = await next_state(peer, n, 30)
        if state == "speaking":
            await asyncio.sleep(0.3)  # the Conductor streams far faster than clips play
            words = "".join(
                e["speech"] for _, e in peer.received.events[n:] if e["type"] == "directive"
            )
            if len(words.split()) >= min_words:
                return t
            t, state, i = await next_state(peer, i + 1, 30)
        assert state == "listening", state
    raise AssertionError(f"no spoken answer in {attempts} turns: {peer.events('state')}")


def local_change(a: np.ndarray, b: np.ndarray, block: int = 4) -> float:
    """Largest mean absolute difference over the block x block tiles of two thumbnails."""
    h, w = a.shape
    tiles = np.abs(a - b).reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    return float(tiles.max())


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
            question = speech_16k("Hello, can you tell me what time it is?")
            t_speak = await ask(peer, lambda: peer.say(question, 16_000))
            n = len(peer.received.events)
            await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "listening", 30, after=n
            )
            states = [e["state"] for e in peer.events("state")]
            assert states[0] == "listening" and states[-3:] == ["thinking", "speaking", "listening"]
            assert states.count("speaking") == 1  # earlier tries (if any) got no speech
            assert len(loud_after(peer, t_speak)) >= 10  # >= 0.2 s of the avatar's voice
            # the face moves: frames differ from the idle face and from one another where they
            # change (the mouth, the head: the largest 4x4-pixel block difference of the 32x32
            # thumbnails, so a still picture's codec noise does not count)
            during = [
                thumb
                for (t, _), thumb in zip(peer.received.video, peer.received.thumbs, strict=True)
                if t >= t_speak
            ]
            assert sum(local_change(f, idle) > 6 for f in during) >= 5
            steps = [local_change(b, a) for a, b in itertools.pairwise(during)]
            assert sum(step > 1.5 for step in steps) >= 5
            clips = peer.events("clip")
            first = clips[0]["index"]  # the Creator stream's own count, across answers
            assert [c["index"] for c in clips] == list(range(first, first + len(clips)))
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
            t_speak = await ask(
                peer,
                lambda: peer.send({"type": "text", "text": "tell me a long story"}),
                min_words=8,  # >= 3 clips: still speaking when the user cuts in
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
            # the new turn ("stop, wait a moment") may be answered later; until then: silence
            await asyncio.sleep(2.0)
            speaking = [
                t
                for t, e in peer.received.events[n:]
                if e["type"] == "state" and e["state"] == "speaking"
            ]
            t_next = min(speaking, default=t_cut + 2.0)
            loud = [t for t in loud_after(peer, t_cut + 0.3) if t < t_next]
            assert loud == [], f"avatar still audible {loud[-1] - t_cut:.2f} s after barge-in"
        finally:
            await peer.close()
