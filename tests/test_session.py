"""A session answers a spoken turn and a typed turn, in order, with clips that play."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from conftest import ScriptedConductor, ToneCreator, speech_16k

from agent.session import SessionEnding


async def test_spoken_turn_is_answered_with_ordered_states(harness_factory) -> None:
    async with harness_factory() as h:
        h.say("What is the weather like today?")
        await h.wait_state("thinking", within=8)
        t_speak, _ = await h.wait_state("speaking", within=8)
        await h.wait_state("listening", within=15, after=2)
        assert h.states() == ["listening", "thinking", "speaking", "listening"]
        # the Conductor heard the user's audio (16 kHz), not text
        turn = h.conductor.turns[0]
        assert turn.audio is not None and turn.audio.shape[0] > 16_000 * 0.5
        assert turn.text == ""
        # the answer was heard: loud output audio after "speaking", video that changes
        assert len(h.loud_after(t_speak)) > 10
        checks = {c for t, c in h.output.video if t >= t_speak}
        assert len(checks) > 5
        clips = [e for e in h.events if e["type"] == "clip"]
        assert [c["index"] for c in clips] == list(range(len(clips)))
        assert clips[0]["duration"] == 13 / 25  # the shorter first clip
        assert all(c["duration"] == 1.0 for c in clips[1:])
        # directives streamed as events, speech then motion
        directives = [e for e in h.events if e["type"] == "directive"]
        assert "".join(d["speech"] for d in directives).split() == h.conductor.reply.split()
        assert directives[-1]["motion"] == "nod gently"


async def test_the_words_a_hearing_conductor_heard_are_shown_before_its_answer(
    harness_factory,
) -> None:
    from dataclasses import dataclass

    from mavid.conductor.hearing import Hearing, HearingConfig
    from mavid.data.domain import known_corpus

    @dataclass
    class HearingConductor(ScriptedConductor):  # mavid.interfaces.HearingConductor
        hearing: Hearing | None = None
        hears: bool = True

        def stream(self, turn, cancel, on_heard=None):
            read = self.hearing.apply(turn)
            if on_heard is not None and read.text and not turn.text:
                on_heard(read.text)
            yield from super().stream(read, cancel)

    conductor = HearingConductor(hearing=Hearing(HearingConfig(corpus=tuple(known_corpus()))))
    async with harness_factory(conductor=conductor) as h:
        h.say("Is there wifi here?")
        await h.wait_state("listening", within=20, after=2)
        heard = [e for e in h.events if e["type"] == "transcript"]
        assert len(heard) == 1 and heard[0]["source"] == "speech" and heard[0]["turn"] == 1
        assert "wifi" in heard[0]["text"].split()
        # the Conductor read those words, not the audio; they went out before its answer
        assert conductor.turns[0].text == heard[0]["text"] and conductor.turns[0].audio is None
        first_directive = next(i for i, e in enumerate(h.events) if e["type"] == "directive")
        assert h.events.index(heard[0]) < first_directive


async def test_the_known_question_a_turn_was_read_as_is_shown_before_its_answer(
    harness_factory,
) -> None:
    from dataclasses import dataclass, replace

    from mavid.conductor.knowledge import Knowledge, KnowledgeConfig, KnowledgeEntry

    knowledge = Knowledge(
        KnowledgeConfig((KnowledgeEntry(("Can I bring my dog?",), ("Only guide dogs.",)),))
    )

    @dataclass
    class UnderstandingConductor(ScriptedConductor):  # mavid.interfaces.UnderstandingConductor
        understands: bool = True

        def stream(self, turn, cancel, on_understood=None):
            known = knowledge.lookup(turn.text)
            if known is not None:
                if on_understood is not None:
                    on_understood(known)
                turn = replace(turn, text=knowledge.as_read(known))
            yield from super().stream(turn, cancel)

    async with harness_factory(conductor=UnderstandingConductor()) as h:
        h.type_text("is my puppy welcome")
        await h.wait_state("listening", within=15, after=2)
        understood = [e for e in h.events if e["type"] == "understood"]
        assert understood == [{"type": "understood", "text": "Can I bring my dog?", "turn": 1}]
        first_directive = next(i for i, e in enumerate(h.events) if e["type"] == "directive")
        assert h.events.index(understood[0]) < first_directive
        assert h.conductor.turns[0].text == "can i bring my dog"


async def test_typed_turn_is_answered(harness_factory, caplog) -> None:
    caplog.set_level(logging.INFO, logger="agent.session")
    async with harness_factory() as h:
        h.type_text("  hello there  ")
        await h.wait_state("speaking", within=8)
        await h.wait_state("listening", within=15, after=1)
        assert h.conductor.turns[0].text == "hello there"
        assert h.conductor.turns[0].audio is None
        assert {"type": "transcript", "source": "text", "text": "hello there"} in h.events
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.session"]
    assert any(line.startswith("session=test event=turn_end turn=1") for line in lines)


async def test_bad_messages_get_errors_and_session_goes_on(harness_factory) -> None:
    async with harness_factory() as h:
        for message in ({"type": "nope"}, {"type": "text", "text": 5}, {"type": "text"}):
            h.transport.type_text(message)
        h.type_text("x" * 5000)
        await asyncio.sleep(0.2)
        errors = [e for e in h.events if e["type"] == "error"]
        assert len(errors) == 4 and not any(e["fatal"] for e in errors)
        h.type_text("still there?")
        await h.wait_state("speaking", within=8)


async def test_model_error_ends_only_that_session(harness_factory) -> None:
    broken = harness_factory(creator=ToneCreator(fail_at=1))
    healthy = harness_factory()
    async with broken as b, healthy as ok:
        b.type_text("break please")
        ok.type_text("hello")
        await asyncio.wait_for(b.run_task, 10)
        assert isinstance(b.session.error, RuntimeError)
        assert any(e["type"] == "error" and e["fatal"] for e in b.events)
        assert b.transport.close_calls >= 1
        await ok.wait_state("speaking", within=8)
        assert not ok.run_task.done()


async def test_conductor_error_is_reported(harness_factory) -> None:
    from mavid.interfaces import ConductorError

    h = harness_factory(conductor=ScriptedConductor(error=ConductorError("endpoint 500")))
    async with h:
        h.type_text("hello")
        await asyncio.wait_for(h.run_task, 10)
        assert isinstance(h.session.error, ConductorError)
        assert "endpoint 500" in next(e for e in h.events if e["type"] == "error")["message"]


async def test_a_pause_inside_speech_starts_early_but_answers_once(harness_factory) -> None:
    first, second = speech_16k("Well, let me see."), speech_16k("What is this?")
    gap = np.zeros(int(0.16 * 16_000), np.float32)  # > pause (64 ms), < hangover (224 ms)
    async with harness_factory() as h:
        h.transport.speak(np.concatenate([first, gap, second]))
        await h.wait_state("speaking", within=10)
        await h.wait_state("listening", within=15, after=2)
        assert h.states() == ["listening", "thinking", "speaking", "listening"]
        assert not [e for e in h.events if e["type"] == "barge_in"]
        assert h.session.turns == 1
        # early answers were started at pauses and dropped unseen; the played one heard it all
        assert len(h.conductor.turns) >= 2
        heard = h.conductor.turns[-1].audio.shape[0] / 16_000
        assert heard >= (first.shape[0] + second.shape[0]) / 16_000
        # the played answer's clips are consecutive in the Creator stream
        indices = [e["index"] for e in h.events if e["type"] == "clip"]
        assert indices == list(range(indices[0], indices[0] + len(indices)))


async def test_text_typed_while_talking_then_speech_ends(harness_factory) -> None:
    long_reply = ScriptedConductor(reply=" ".join(["and so on"] * 12))
    async with harness_factory(conductor=long_reply) as h:
        h.say("I am saying something rather long while I also type a message to you.")
        await h.wait_for(lambda e: e["type"] == "vad" and e["speaking"])
        h.type_text("typed meanwhile")
        await h.wait_state("speaking")  # the typed turn is answered while the user talks
        # the spoken turn ends later: it replaces the typed one, the session goes on
        await h.wait_for(lambda e: e["type"] == "vad" and not e["speaking"], within=10)
        await h.wait_for(lambda e: e["type"] == "barge_in", within=5)
        await h.wait_state("speaking", within=15, after=len(h.events) - 1)
        assert h.session.error is None and not h.run_task.done()
        assert h.session.turns == 2
        assert h.conductor.turns[-1].audio is not None  # the last answer was to the speech


async def test_say_cuts_an_answer_and_speaks_the_given_directives(harness_factory) -> None:
    long_reply = ScriptedConductor(reply=" ".join(["word"] * 40))
    async with harness_factory(conductor=long_reply) as h:
        listener = h.session.events.subscribe()
        h.type_text("tell me everything")
        await h.wait_state("speaking")
        turn = h.session.say("Here is what I was told to say.", "point left")
        assert turn == 2
        _, cut = await h.wait_for(lambda e: e["type"] == "barge_in")
        assert cut["reason"] == "say" and cut["turn"] == 1
        _, said = await h.wait_for(lambda e: e["type"] == "directive" and e["turn"] == 2)
        assert said == {
            "type": "directive",
            "speech": "Here is what I was told to say.",
            "motion": "point left",
            "turn": 2,
        }
        n = len(h.events)
        await h.wait_state("speaking", after=n - 3)
        await h.wait_for(lambda e: e["type"] == "clip" and e["turn"] == 2)
        assert len(long_reply.turns) == 1  # the Conductor never saw the said turn
        report = h.session.interrupt()
        assert report is not None and report.reason == "interrupt" and report.turn == 2
        await h.wait_state("listening", after=n)
        assert h.session.interrupt() is None
        for bad in ("", "  ", 7):
            with pytest.raises(ValueError):
                h.session.say(bad)  # type: ignore[arg-type]
        assert h.session.turns == 2  # bad input lost nothing and started nothing
    # the in-process listener saw what the transport saw, and its stream ended
    seen = [e async for e in listener]
    assert seen == h.events[1:]  # all but the first state, sent before it subscribed
    with pytest.raises(SessionEnding):
        h.session.say("too late")


async def test_a_flood_of_typed_turns_is_refused_beyond_the_rate(harness_factory) -> None:
    h = harness_factory()
    async with h:
        for i in range(200):  # one burst, as a script on the data channel would send it
            h.type_text(f"turn {i}")
        await h.wait_state("speaking", within=8)
        refused = [e for e in h.events if e["type"] == "error"]
        assert len(refused) >= 190 and not any(e["fatal"] for e in refused)
        assert h.session.turns <= 5
        assert len(h.conductor.turns) <= 5  # the Conductor never saw the rest
        await asyncio.sleep(1.0)  # the bucket refills: a person typing is answered again
        n = len(h.events)
        h.type_text("and now?")
        await h.wait_for(lambda e: e["type"] == "transcript" and e["text"] == "and now?", after=n)


async def test_a_transport_that_fails_to_close_still_ends_the_session(harness_factory) -> None:
    h = harness_factory()
    listener = h.session.events.subscribe()

    async def broken_close() -> None:
        h.transport.hang_up()
        raise ConnectionResetError("the network went first")

    h.transport.close = broken_close
    async with h:
        h.type_text("hello")
        await h.wait_state("speaking", within=8)
    assert h.session.metrics.registry.get_sample_value("mavid_sessions_active") == 0
    assert [e async for e in listener]  # the event stream ended rather than hanging
