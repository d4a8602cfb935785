"""The phone track of the tiny preset: ids, frame alignment, the planner, the stream's queue."""

import asyncio
import concurrent.futures
import threading

import numpy as np
import pytest
import torch
from conftest import ScriptedConductor

from agent.answer import AnswerConfig, AnswerObserver, run_answer
from mavid.config import MICRO
from mavid.creator.audio_decoder import column_phones
from mavid.creator.model import CreatorModel
from mavid.creator.phones import (
    MAX_PHONE_POS,
    PHONE_VOCAB,
    PhonePlanner,
    phone_id,
    phone_track,
)
from mavid.creator.stream import MavidCreator
from mavid.data.speech import PhonemeTiming
from mavid.interfaces import CancelToken, UserTurn
from realtime.clock import MediaClock
from realtime.playout import PlayoutBuffer


def test_phone_ids_are_stable_and_in_range():
    ids = {phone_id(p) for p in ["a", "t", "S", "aI", "@", "n", "s"]}
    assert len(ids) == 7 and all(1 <= i < PHONE_VOCAB for i in ids)
    assert phone_id("aI") == phone_id("aI")


def test_track_marks_the_frames_each_phoneme_covers():
    track = phone_track([PhonemeTiming("h", 0.04, 0.12), PhonemeTiming("aI", 0.12, 0.60)], 20, 25)
    assert track.shape == (20, 2)
    assert track[0].tolist() == [0, 0]  # silence before
    assert (track[1:3, 0] == phone_id("h")).all() and track[1:3, 1].tolist() == [0, 1]
    ai = np.nonzero(track[:, 0] == phone_id("aI"))[0]
    assert ai.tolist() == list(range(3, 15))
    assert track[ai, 1].max() == MAX_PHONE_POS - 1  # position saturates
    assert (track[15:] == 0).all()


def test_planner_carries_speech_over_and_drains():
    planner = PhonePlanner(25)
    planner.push("   ")
    assert planner.pending_frames == 0
    planner.push("The museum opens at nine in the morning.")
    queued = planner.pending_frames
    assert queued > 25  # more than one clip's worth
    first = planner.take(13)
    assert first[0, 0] == 0 or first[1, 0] != 0  # at most one frame of lead-in silence
    rest = []
    while planner.pending_frames:
        rest.append(planner.take(25))
    spoken = np.count_nonzero(first[:, 0]) + sum(np.count_nonzero(r[:, 0]) for r in rest)
    assert spoken == queued
    assert (planner.take(25) == 0).all()  # dry: silence
    planner.push("Hello,")
    planner.clear()
    assert planner.pending_frames == 0


def test_punctuation_asks_for_a_pause():
    def inner_silence(first: str) -> int:
        planner = PhonePlanner(25)
        planner.push(first)
        planner.push("next")
        voiced = planner.take(300)[:, 0] != 0
        idx = np.nonzero(voiced)[0]
        return int((~voiced[idx[0] : idx[-1]]).sum())

    plain, comma, stop = (
        inner_silence(t) for t in ("Welcome here", "Welcome here,", "Welcome here.")
    )
    assert plain < comma < stop


def test_column_phones_follow_the_delay_pattern():
    track = torch.arange(1, 6)[None, :, None].repeat(1, 1, 2)  # frames 0..4 -> ids 1..5
    cols = column_phones(track, 5 + 4)
    assert cols[0, :5, 0].tolist() == [1, 2, 3, 4, 5]
    assert cols[0, 5:, 0].tolist() == [0, 0, 0, 0]  # past the clip's frames: silence
    assert column_phones(None, 3) is None


def test_the_track_changes_what_the_decoder_says():
    model = CreatorModel.random(MICRO, 0)
    creator = MavidCreator(model)
    clips = []
    for text in ("hello there", "goodbye now"):
        stream = creator.new_stream(seed=0)
        clips.append(stream.next_clip(text, ""))
    assert not np.array_equal(clips[0].audio, clips[1].audio)
    # the paper preset's switch removes the track entirely
    off = CreatorModel(MICRO.replace_creator(phone_track=False))
    assert not hasattr(off.audio, "phone_embed")
    stream = MavidCreator(off.eval()).new_stream(seed=0)
    stream.next_clip("hello there", "")
    assert stream.pending_speech_frames == 0


class _Quiet(AnswerObserver):
    def on_directive(self, delta) -> None:
        pass

    def on_clip(self, made) -> None:
        pass


async def _answer(stream, reply: str):
    playout = PlayoutBuffer(MediaClock(), stream.reference_frame())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return await run_answer(
            UserTurn(text="hi"),
            CancelToken(),
            conductor=ScriptedConductor(reply=reply),
            stream=stream,
            stream_lock=threading.Lock(),
            playout=playout,
            executor=pool,
            observer=_Quiet(),
            config=AnswerConfig(max_ahead_s=60),
        )


async def test_an_answer_speaks_all_queued_speech_and_the_next_starts_clean():
    stream = MavidCreator(CreatorModel.random(MICRO, 0)).new_stream(seed=0)
    reply = "The cloakroom is next to the entrance and it is free of charge for every visitor."
    made = await _answer(stream, reply)
    assert stream.pending_speech_frames == 0
    assert made[-1].clip.speech == ""  # clips made only to speak what was still queued
    # an answer cut with speech queued: the next answer does not inherit it
    stream.planner.push("left over words from a cut answer")
    made = await asyncio.wait_for(_answer(stream, "Yes."), 60)
    assert stream.pending_speech_frames == 0
    assert len(made) <= 2


@pytest.mark.parametrize("text", ["", "   ", "..."])
def test_prompts_without_words_queue_nothing(text):
    planner = PhonePlanner(25)
    planner.push(text)
    assert planner.pending_frames == 0


@torch.inference_mode()
def test_no_track_embeds_to_nothing_and_guidance_steers_the_codes():
    from mavid.creator.audio_decoder import SamplingConfig
    from mavid.creator.phones import NO_TRACK
    from mavid.creator.text import encode_text

    model = CreatorModel.random(MICRO, 0)
    audio = model.audio
    track = torch.tensor([[[5, 0], [5, 1], [9, 0]]])
    assert audio.embed_phones(track).abs().sum() > 0
    assert torch.equal(audio.embed_phones(torch.full_like(track, NO_TRACK)), torch.zeros(1, 3, 32))
    text = torch.tensor([encode_text("hello", MICRO.creator.max_text_len)])
    phones = torch.randint(1, 50, (1, 9, 2)) % torch.tensor([50, 8])

    def codes(guidance, seed=0):
        cols, sources, _ = audio.generate(
            text, None, 9, None, SamplingConfig(1.0, 0, 1.0),
            torch.Generator().manual_seed(seed), phones=phones, phone_guidance=guidance,
        )  # fmt: skip
        return cols, sources

    plain, plain_src = codes(1.0)
    again, _ = codes(1.0)
    assert torch.equal(plain, again) and plain.shape[0] == 1
    guided, guided_src = codes(3.0)
    assert guided.shape == plain.shape and plain_src[0].shape == guided_src[0].shape
    assert not torch.equal(plain, guided)  # the same draws, other logits


def test_phone_dropout_trains_items_without_their_track():
    from mavid.creator.phones import without_track

    track = torch.ones(3, 4, 2, dtype=torch.long)
    out = without_track(track, torch.tensor([True, False, True]))
    assert (out[0] == -1).all() and (out[2] == -1).all() and torch.equal(out[1], track[1])
    assert torch.equal(track, torch.ones(3, 4, 2, dtype=torch.long))  # a copy
    assert without_track(None, torch.tensor([True])) is None
