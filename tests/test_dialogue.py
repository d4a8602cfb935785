"""A dialogue sample: clip layout, per-clip text, media lengths, splits held out."""

import numpy as np
import pytest

from mavid.data.dialogue import (
    IDENTITY_POOL,
    SPLITS,
    clip_layout,
    identity_for,
    plan_sample,
    render_sample,
    typed_form,
    voice_pool,
)
from mavid.data.domain import INTENTS, paraphrase_split
from mavid.eval.wer import normalize_text
from mavid.interfaces import MediaSpec

SPEC = MediaSpec()


def _find(seed, pred, limit=400):
    for i in range(limit):
        p = plan_sample(seed, i)
        if pred(p):
            return p
    raise AssertionError("no such plan")


def test_plans_are_deterministic_and_cover_the_domain():
    assert plan_sample(4, 17) == plan_sample(4, 17)
    assert plan_sample(4, 17) != plan_sample(5, 17)
    plans = [plan_sample(0, i) for i in range(600)]
    assert {p.split for p in plans} == set(SPLITS)
    assert len({p.intent for p in plans}) == len(INTENTS)
    assert 0.1 < np.mean([p.typed for p in plans]) < 0.3
    assert any(p.user_noise != "silence" for p in plans)


def test_test_split_holds_out_paraphrases_voices_and_identities():
    plans = [plan_sample(0, i) for i in range(600)]
    for p in plans:
        intent = next(i for i in INTENTS if i.name == p.intent)
        assert paraphrase_split(intent, p.paraphrase_index) == p.split
        assert p.avatar_voice.name in voice_pool(p.split, "avatar")
        assert p.user_voice.name in voice_pool(p.split, "user")
    test_voices = set(voice_pool("test", "avatar")) | set(voice_pool("test", "user"))
    train_voices = set(voice_pool("train", "avatar")) | set(voice_pool("train", "user"))
    assert test_voices and not test_voices & train_voices
    train_ids = {identity_for(0, "train", i) for i in range(IDENTITY_POOL["train"])}
    assert not {identity_for(0, "test", i) for i in range(IDENTITY_POOL["test"])} & train_ids


def test_clip_layout():
    assert clip_layout(13, SPEC) == [(0, 13)]
    assert clip_layout(14, SPEC) == [(0, 13), (13, 25)]
    assert clip_layout(63, SPEC) == [(0, 13), (13, 25), (38, 25)]


def test_rendered_sample_is_consistent():
    plan = _find(0, lambda p: not p.typed and p.intent == "check_item")
    s = render_sample(plan, 0)
    total = sum(c.num_frames for c in s.clips)
    assert s.frames.shape == (total, 128, 128, 3)
    assert s.audio.shape == s.speech_audio.shape == (SPEC.samples_for_frames(total),)
    assert s.mouth.shape == (total, 2)
    assert s.clips[0].num_frames == SPEC.first_clip_frames
    assert all(c.num_frames == SPEC.clip_frames for c in s.clips[1:])
    # the per-clip speech prompts, in order, are exactly the answer's words
    said = " ".join(c.speech for c in s.clips if c.speech)
    assert normalize_text(said) == normalize_text(s.answer.speech)
    assert (
        s.answer.speech
        == next(i for i in INTENTS if i.name == "check_item").answer_for(plan.prop).speech
    )
    assert s.directive.endswith("<m_eos>") and "<m_bos>" in s.directive
    assert s.user_audio is not None and s.user_audio.dtype == np.float32
    assert s.user_frames.shape == (4, 128, 128, 3)
    # the mouth moves while the avatar speaks and rests in the lead-in
    assert s.mouth[:2, 0].max() == 0.0 and s.mouth[:, 0].max() > 0.5
    # rendering is deterministic
    again = render_sample(plan, 0)
    np.testing.assert_array_equal(again.frames, s.frames)
    np.testing.assert_array_equal(again.audio, s.audio)


def test_long_answer_makes_many_clips_and_typed_turn_has_no_audio():
    plan = _find(0, lambda p: p.intent in ("history", "tour_plan", "rules") and p.typed)
    s = render_sample(plan, 0)
    assert s.user_audio is None and s.question == s.question.lower()
    assert len(s.clips) >= 19  # 18 s and more
    motions = [c.motion for c in s.clips]
    if "nod" in s.answer.motion:  # a nod lasts ~2 s: only the first clips carry it
        assert "nod" in motions[0] and "nod" not in motions[-1]


def test_typed_form():
    rng = np.random.default_rng(0)
    t = typed_form("Where's the Café?", rng)
    assert "?" not in t and t == t.lower()


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="unknown split"):
        voice_pool("dev", "avatar")


def test_clip_media_and_user_turn():
    plan = _find(1, lambda p: p.intent == "wifi")
    s = render_sample(plan, 1)
    media = s.clip_media()
    assert len(media) == len(s.clips)
    for (frames, audio), c in zip(media, s.clips, strict=True):
        assert frames.shape[0] == c.num_frames
        assert audio.shape == (SPEC.samples_for_frames(c.num_frames),)
    np.testing.assert_array_equal(np.concatenate([a for _, a in media]), s.audio)
    turn = s.user_turn()
    assert len(turn.video) == 4 and turn.video_fps == 2.0
    assert (turn.audio is None) == plan.typed and (turn.text != "") == plan.typed
