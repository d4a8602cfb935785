"""Generated visitor turns: deterministic, varied, and never from held-out material."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mavid.data.dialogue import IDENTITY_POOL, USER_SAMPLE_RATE, voice_pool
from mavid.data.domain import INTENTS, intent_by_name, paraphrase_split
from mavid.data.visitor_turns import TurnGenerator, TurnsConfig, drop_words, train_voices


def test_a_turn_is_a_pure_function_of_seed_and_index():
    a, b = TurnGenerator(3), TurnGenerator(3)
    for index in (0, 7, 12345):
        ta, sa, ma, pa = a.turn(index)
        tb, sb, mb, pb = b.turn(index)
        assert pa == pb and (sa, ma) == (sb, mb) and ta.text == tb.text
        assert (ta.audio is None) == (tb.audio is None)
        if ta.audio is not None:
            assert np.array_equal(ta.audio, tb.audio)
        assert all(np.array_equal(x, y) for x, y in zip(ta.video, tb.video, strict=True))
    assert [a.plan(i) for i in range(20)] != [TurnGenerator(4).plan(i) for i in range(20)]


def test_held_out_voices_paraphrases_and_identities_never_appear():
    test_voices = set(voice_pool("test", "user")) | set(voice_pool("test", "avatar"))
    assert not test_voices & set(train_voices())
    gen = TurnGenerator(0)
    plans = [gen.plan(i) for i in range(2000)]
    for p in plans:
        assert paraphrase_split(intent_by_name(p.intent), p.paraphrase_index) == "train"
        assert p.voice.name not in test_voices
        assert 0 <= p.identity < IDENTITY_POOL["train"]
    # and the mix is wide: every intent, typed and spoken, many voices
    assert {p.intent for p in plans} == {i.name for i in INTENTS}
    assert {p.typed for p in plans} == {True, False}
    assert len({p.voice.name for p in plans}) > 100
    with pytest.raises(ValueError, match="held-out test"):
        TurnsConfig(paraphrase_splits=("train", "test"))


def test_val_paraphrases_join_only_when_asked():
    gen = TurnGenerator(0, TurnsConfig(paraphrase_splits=("train", "val")))
    splits = {
        paraphrase_split(intent_by_name(p.intent), p.paraphrase_index)
        for p in (gen.plan(i) for i in range(1000))
    }
    assert splits == {"train", "val"}


def test_turns_carry_the_answer_of_their_intent_and_prop():
    gen = TurnGenerator(1)
    kinds = set()
    for index in range(24):
        turn, speech, motion, plan = gen.turn(index)
        answer = intent_by_name(plan.intent).answer_for(plan.prop)
        assert (speech, motion) == (answer.speech, answer.motion)
        assert len(turn.video) == 4 and turn.video[0].dtype == np.uint8
        if plan.typed:
            assert turn.text.strip() and turn.audio is None
            kinds.add("typed")
        else:
            assert turn.text == "" and turn.audio_sample_rate == USER_SAMPLE_RATE
            assert turn.audio.dtype == np.float32 and np.isfinite(turn.audio).all()
            assert 0.3 < turn.audio.size / USER_SAMPLE_RATE < 8 and np.abs(turn.audio).max() > 0
            kinds.add("spoken")
    assert kinds == {"typed", "spoken"}


@given(st.text(alphabet="ab ", max_size=40), st.floats(0, 0.99), st.integers(0, 2**32 - 1))
def test_word_dropout_keeps_a_word_and_the_order(text, p, seed):
    out = drop_words(text, np.random.default_rng(seed), p)
    words = text.split()
    if len(words) < 2:
        assert out == text
    else:
        kept = out.split()
        assert 1 <= len(kept) <= len(words)
        it = iter(words)
        assert all(w in it for w in kept)  # a subsequence
