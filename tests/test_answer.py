"""One answer: directives -> clip prompts -> clips -> playout; sizing, cap, gate, errors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading

import pytest
from conftest import ScriptedConductor, ToneCreator

from agent.answer import AnswerConfig, AnswerObserver, run_answer
from mavid.interfaces import CancelToken, ConductorError, UserTurn
from realtime.clock import MediaClock
from realtime.playout import PlayoutBuffer


class Recorder(AnswerObserver):
    def __init__(self) -> None:
        self.directives, self.clips = [], []

    def on_directive(self, delta) -> None:
        self.directives.append(delta)

    def on_clip(self, made) -> None:
        self.clips.append(made)


async def answer(creator: ToneCreator, conductor: ScriptedConductor, **kwargs):
    stream = creator.new_stream()
    playout = PlayoutBuffer(MediaClock(), stream.reference_frame())
    recorder = Recorder()
    config = kwargs.pop("config", AnswerConfig())
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        made = await run_answer(
            UserTurn(text="hi"),
            CancelToken(),
            conductor=conductor,
            stream=stream,
            stream_lock=threading.Lock(),
            playout=playout,
            executor=pool,
            observer=recorder,
            config=config,
            **kwargs,
        )
    return made, recorder, playout


async def test_prompts_follow_the_speech_and_clips_queue_back_to_back() -> None:
    conductor = ScriptedConductor(reply="one two three four five six seven")
    # fixed clip sizes: on a loaded machine the adaptive sizing (tested below) may shorten some
    config = AnswerConfig(adaptive_clips=False)
    made, recorder, playout = await answer(ToneCreator(), conductor, config=config)
    assert [m.clip.speech for m in made] == ["one", "two three four", "five six", "seven"]
    assert all(m.clip.motion == "" for m in made[:1])  # motion streams after the speech
    assert [m.clip.frames.shape[0] for m in made] == [13, 25, 25, 25]
    for a, b in itertools.pairwise(made):
        assert b.scheduled.start == a.scheduled.end
    assert recorder.clips == made and len(recorder.directives) == 8
    assert playout.end_s == made[-1].scheduled.end_s


async def test_a_slow_creator_keeps_clips_short() -> None:
    slow = ToneCreator(work_s=0.6)  # RTF ~0.9 for a 13-frame clip
    conductor = ScriptedConductor(reply="a b c d e f g")
    made, _, _ = await answer(slow, conductor, config=AnswerConfig(max_ahead_s=10))
    assert {m.clip.frames.shape[0] for m in made} == {13}


async def test_clip_cap_and_gate() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(
        answer(
            ToneCreator(),
            ScriptedConductor(reply=" ".join(["word"] * 40)),
            config=AnswerConfig(max_clips=2),
            gate=gate,
        )
    )
    await asyncio.sleep(0.5)
    assert not task.done()  # made but held: nothing plays before the gate opens
    gate.set()
    made, _, _ = await task
    assert len(made) == 2


async def test_conductor_error_propagates() -> None:
    with pytest.raises(ConductorError, match="down"):
        await answer(ToneCreator(), ScriptedConductor(error=ConductorError("down")))


async def test_a_cut_answer_leaves_no_task_behind() -> None:
    # the Conductor is slow, so the answer is waiting for its next prompt when it is cut
    before = asyncio.all_tasks()
    task = asyncio.create_task(answer(ToneCreator(), ScriptedConductor(token_s=0.2)))
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    assert leftover == []
