"""Barge-in: user speech while the avatar speaks cancels, flushes and returns to LISTENING."""

from __future__ import annotations

import asyncio
import logging
import time

from conftest import ScriptedConductor, ToneCreator

LONG = " ".join(["this answer goes on and on"] * 8)


async def test_speech_while_speaking_cuts_the_answer(harness_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="agent.session")
    h = harness_factory(conductor=ScriptedConductor(reply=LONG))
    async with h:
        h.type_text("tell me a long story")
        await h.wait_state("speaking", within=8)
        h.say("Stop, please wait.")
        t_cut, cut = await h.wait_for(lambda e: e["type"] == "barge_in", within=8)
        assert cut["reason"] == "speech" and cut["flushed"] > 0.5
        idx = len(h.transport.events)
        # the interrupted answer is over: LISTENING, then the new turn from "stop, please wait"
        assert h.states()[-1] == "listening"
        assert [e for e in h.events if e["type"] == "state"][-1].get("interrupted") is True
        await h.wait_state("thinking", within=8, after=idx)
        t_next, _ = await h.wait_state("speaking", within=8, after=idx)
        # the avatar is silent from shortly after the cut until the new answer
        assert not h.loud_after(t_cut + 0.1)[:1] or h.loud_after(t_cut + 0.1)[0] >= t_next - 0.1
        report = h.session.barge_ins[0]
        assert report.turn == 1 and report.clips_made >= 1
        assert h.session.turns == 2
    # one INFO line per session event, each carrying the session id
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.session"]
    for event in ("session_start", "turn_start", "barge_in", "session_end"):
        assert any(line.startswith(f"session=test event={event}") for line in lines), event


async def test_typed_text_while_speaking_barges_in(harness_factory) -> None:
    h = harness_factory(conductor=ScriptedConductor(reply=LONG))
    async with h:
        h.type_text("first")
        await h.wait_state("speaking", within=8)
        h.type_text("second")
        await h.wait_for(lambda e: e["type"] == "barge_in" and e["reason"] == "text")
        await h.wait_for(lambda e: e["type"] == "transcript" and e["text"] == "second")
        assert [t.text for t in h.conductor.turns] == ["first", "second"]


async def test_barge_in_while_thinking_cancels_model_work(harness_factory) -> None:
    slow = ToneCreator(work_s=2.0)  # the first clip takes 2 s: the cut lands mid-clip
    async with harness_factory(creator=slow) as h:
        h.type_text("hello")
        await h.wait_state("thinking")
        await asyncio.to_thread(h.stream.started.wait, 5)
        report = h.session.barge_in("test")
        assert report is not None and report.state == "thinking" and report.clips_made == 0
        assert h.session.state == "listening"
        assert h.session.barge_in("again") is None  # nothing left to cut
        await h.session.wait_idle()
        # the worker saw the token between steps and abandoned the clip
        for _ in range(100):
            if h.stream.cancelled:
                break
            await asyncio.sleep(0.05)
        assert h.stream.cancelled == 1 and h.stream.index == 0
        assert h.playout.queued_s() == 0


async def test_onset_mutes_at_once_and_a_false_alarm_lets_the_answer_go_on(
    harness_factory,
) -> None:
    from realtime.vad import VadEvent

    h = harness_factory(conductor=ScriptedConductor(reply=LONG))
    async with h:
        h.type_text("talk to me")
        await h.wait_state("speaking", within=8)
        h.session._on_vad(VadEvent("onset", at=0.0, onset=0.0), 0.0)  # a first speech window
        assert h.playout.muted
        t_mute = time.monotonic()
        await asyncio.sleep(0.3)
        assert not h.loud_after(t_mute + 0.05)  # silent while it might be a barge-in
        h.session._on_vad(VadEvent("onset_cancel", at=0.1, onset=0.1), 0.1)  # a click
        t_back = time.monotonic()
        await asyncio.sleep(0.3)
        assert not h.playout.muted and h.loud_after(t_back)
        assert h.session.state == "speaking" and not h.session.barge_ins
