"""Conductor meter: directive-format validity, intent/answer accuracy, any Conductor."""

from collections.abc import Iterator

import pytest

from mavid.data.domain import INTENTS, format_directive, intent_by_name
from mavid.eval.conductor import (
    directive_valid,
    match_answer,
    run_conductor,
    score_conductor,
)
from mavid.interfaces import CancelToken, Conductor, DirectiveDelta, UserTurn


def test_directive_format_validity():
    assert directive_valid("Hello there. <m_bos> nod, smile <m_eos>")
    assert directive_valid("The shop is behind you. <m_bos>  <m_eos>")  # plain QA: empty motion
    assert not directive_valid("Hello there. <m_bos> nod")  # no <m_eos>
    assert not directive_valid("<m_bos> nod <m_eos>")  # no speech
    assert not directive_valid("Hi <m_bos> backflip <m_eos>")  # motion outside the vocabulary
    assert not directive_valid("Hi <m_bos> nod, nod <m_eos>")
    assert not directive_valid("Hi <m_eos> nod <m_bos>")
    assert not directive_valid("Hi <m_bos> nod <m_eos> trailing words")


def test_ground_truth_scores_perfectly():
    preds, intents, props, motions = [], [], [], []
    for intent in INTENTS:
        for prop, answer in (intent.by_prop or {"none": intent.answer_for()}).items():
            preds.append(format_directive(answer))
            intents.append(intent.name)
            props.append(prop)
            motions.append(answer.motion)
    s = score_conductor(preds, intents, props, motions)
    assert (s.intent_accuracy, s.answer_accuracy, s.format_validity, s.motion_accuracy) == (
        1.0,
        1.0,
        1.0,
        1.0,
    )


def test_wrong_answers_and_wrong_visual_variant_are_caught():
    check = intent_by_name("check_item")
    wifi = intent_by_name("wifi").answer_for()
    preds = [
        format_directive(check.answer_for("map")),  # right intent, wrong reading of the camera
        format_directive(wifi),  # wrong intent
        "gibberish words nobody said <m_bos> <m_eos>",  # no intent at all
        check.answer_for("ticket").speech,  # right answer, broken format
    ]
    s = score_conductor(preds, ["check_item"] * 4, ["ticket"] * 4)
    assert s.intent_accuracy == pytest.approx(2 / 4)
    assert s.answer_accuracy == pytest.approx(1 / 4)
    assert s.format_validity == pytest.approx(3 / 4)
    assert match_answer("we are open every day from nine until six") == ("opening_hours", "none")
    assert match_answer("") is None
    with pytest.raises(ValueError, match="equal"):
        score_conductor(["x"], [], [])
    with pytest.raises(ValueError, match="unknown intents"):
        score_conductor(["x"], ["karaoke"], ["none"])


class _Echo:
    """A Conductor at the test boundary: answers every turn with the wifi answer, in pieces."""

    def stream(self, turn: UserTurn, cancel: CancelToken) -> Iterator[DirectiveDelta]:
        answer = intent_by_name("wifi").answer_for()
        for word in answer.speech.split():
            cancel.raise_if_cancelled()
            yield DirectiveDelta(speech=word + " ")
        yield DirectiveDelta(motion="nod")


def test_any_conductor_can_be_scored():
    conductor = _Echo()
    assert isinstance(conductor, Conductor)
    text = run_conductor(conductor, UserTurn(text="is there wifi"))
    assert directive_valid(text)
    s = score_conductor([text], ["wifi"], ["none"], [""])
    assert s.intent_accuracy == 1.0 and s.motion_accuracy == 0.0
