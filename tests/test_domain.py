"""The museum front-desk domain: intents, paraphrases, visual answers, long answers, corpus."""

import pytest
from rapidfuzz import fuzz

from mavid.conductor.format import plain_words
from mavid.conductor.knowledge import Knowledge
from mavid.data.domain import (
    INTENTS,
    PROPS,
    domain_corpus,
    format_directive,
    intent_by_name,
    more_questions,
    paraphrase_split,
)
from mavid.data.faces import parse_motion
from mavid.data.speech import Voice, synthesize
from mavid.eval.conductor import directive_valid
from mavid.train.export import domain_knowledge


def test_enough_intents_and_paraphrases():
    assert len(INTENTS) >= 30
    assert len({i.name for i in INTENTS}) == len(INTENTS)
    for intent in INTENTS:
        assert len(intent.paraphrases) >= 6, intent.name
        assert len(set(intent.paraphrases)) == len(intent.paraphrases)
    # one question never belongs to two intents
    seen = [p.lower() for i in INTENTS for p in i.paraphrases]
    assert len(seen) == len(set(seen))


def test_visual_intents_change_the_answer_with_what_is_shown():
    visual = [i for i in INTENTS if i.visual]
    assert len(visual) >= 3
    for intent in visual:
        speeches = {a.speech for a in intent.by_prop.values()}
        assert len(speeches) == len(intent.by_prop) >= 3
        assert set(intent.by_prop) <= set(PROPS)
    check = intent_by_name("check_item")
    assert check.answer_for("ticket").speech != check.answer_for("map").speech
    fb = intent_by_name("feedback")
    assert "glad" in fb.answer_for("thumbs_up").speech
    with pytest.raises(ValueError, match="no answer for prop"):
        check.answer_for("thumbs_up")


def test_answers_have_valid_directives_and_plain_qa_has_no_motion():
    plain = 0
    for intent in INTENTS:
        for a in intent.by_prop.values() or [intent.answer_for()]:
            parse_motion(a.motion)  # raises on an unknown motion
            d = format_directive(a)
            assert directive_valid(d), d
            plain += a.motion == ""
    assert plain >= 10


def test_long_answers_last_18_seconds():
    long = [i for i in INTENTS if not i.visual and len(i.answer_for().speech.split()) > 50]
    assert len(long) >= 3
    u = synthesize(long[0].answer_for().speech, Voice(rate=175))
    assert u.duration >= 18.0


def test_held_out_paraphrases_and_corpus():
    intent = INTENTS[0]
    n = len(intent.paraphrases)
    assert paraphrase_split(intent, n - 1) == "test"
    assert paraphrase_split(intent, n - 2) == "val"
    assert paraphrase_split(intent, 0) == "train"
    with pytest.raises(IndexError):
        paraphrase_split(intent, n)
    corpus = domain_corpus()
    assert all(isinstance(t, str) and t for t in corpus)
    for intent in INTENTS:
        assert set(intent.paraphrases) <= set(corpus)
    assert any("<m_bos>" in t for t in corpus)


def test_the_other_ways_of_asking_leave_the_held_out_questions_unheard_of():
    more = more_questions()
    assert set(more) == {i.name for i in INTENTS}
    assert sum(map(len, more.values())) >= 500 and all(len(qs) >= 10 for qs in more.values())
    said = {plain_words(p) for i in INTENTS for p in i.paraphrases}
    others = [q for qs in more.values() for q in qs]
    assert len({plain_words(q) for q in others}) == len(others)  # no two alike
    assert said.isdisjoint(plain_words(q) for q in others)  # none is a paraphrase of the world
    # none is spelt like, or means nearly the same as, its intent's held-out question
    knowledge = Knowledge(domain_knowledge())
    for intent in INTENTS:
        held_out = intent.paraphrases[-1]
        assert paraphrase_split(intent, len(intent.paraphrases) - 1) == "test"
        for q in more[intent.name]:
            assert fuzz.ratio(plain_words(held_out), plain_words(q)) < 75, (held_out, q)
            assert float(knowledge.vector(held_out) @ knowledge.vector(q)) < 0.9, (held_out, q)
