"""The tiny Conductor's recall: the nearest known question by meaning (real WordLlama)."""

import dataclasses

import pytest
from micro_world import micro_world, one_torch_thread

from mavid.conductor.recall import RECALL_CONFIG_NAME, RECALL_SEPARATOR, Recall, RecallConfig
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.data.domain import INTENTS, known_questions, paraphrase_split
from mavid.data.visitor_turns import TurnsConfig
from mavid.eval.conductor import run_conductor
from mavid.interfaces import UserTurn
from mavid.train.data import iter_samples
from mavid.train.stage1 import ConductorTask, examples_and_questions, stage1_config


@pytest.fixture(scope="module")
def recall() -> Recall:
    return Recall(RecallConfig(tuple(known_questions())))


def test_known_questions_are_every_paraphrase_but_the_held_out_ones():
    known = known_questions()
    assert len(known) == sum(len(i.paraphrases) - 1 for i in INTENTS)
    held_out = {p for i in INTENTS for k, p in enumerate(i.paraphrases)
                if paraphrase_split(i, k) == "test"}  # fmt: skip
    assert not held_out & set(known)


def test_a_question_recalls_itself_or_without_itself_a_neighbour(recall):
    assert recall.nearest("Where are the toilets?") == ("Where are the toilets?", pytest.approx(1))
    other, sim = recall.nearest("Where are the toilets?", exclude="Where are the toilets?")
    assert other != "Where are the toilets?" and other in known_questions() and sim < 1
    # reworded: a question of the same intent is nearest
    wifi = next(i for i in INTENTS if i.name == "wifi")
    assert recall.nearest("is there any wireless internet")[0] in wifi.paraphrases


def test_the_hint_is_appended_only_to_text_near_enough(recall):
    turn = UserTurn(text="  is there any wireless internet ")
    hinted = recall.apply(turn)
    head, hint = hinted.text.split(RECALL_SEPARATOR)
    assert head == "is there any wireless internet" and hint == recall.nearest(turn.text)[0]
    assert recall.apply(UserTurn()) == UserTurn()  # nothing to read: nothing recalled
    assert recall.apply(UserTurn(text="zzzz qqqq")).text == "zzzz qqqq"  # far from all
    strict = Recall(RecallConfig(("Where are the toilets?",), min_similarity=0.99))
    assert strict.apply(UserTurn(text="where is the loo")).text == "where is the loo"


def test_the_config_is_checked_and_saved_beside_the_weights(tmp_path):
    with pytest.raises(ValueError, match="question"):
        RecallConfig(("", " "))
    with pytest.raises(ValueError, match="min_similarity"):
        RecallConfig(("Hi.",), min_similarity=2.0)
    assert RecallConfig.load(tmp_path) is None
    config = RecallConfig(("Hi.", "Where is the cafe?"), min_similarity=0.3)
    config.save(tmp_path)
    assert RecallConfig.load(tmp_path) == config
    (tmp_path / RECALL_CONFIG_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="malformed"):
        RecallConfig.load(tmp_path)


def test_the_conductor_reads_the_hint_and_keeps_its_recall_when_saved(recall, tmp_path):
    with one_torch_thread():
        conductor = ThinkerConductor.tiny(seed=3, config=ConductorConfig(do_sample=False))
        conductor.recall = recall
        conductor.save_pretrained(tmp_path)
        loaded = ThinkerConductor.from_pretrained(tmp_path, ConductorConfig(do_sample=False))
        assert loaded.recall is not None and loaded.recall.config == recall.config
        turn = UserTurn(text="is there any wireless internet")
        assert run_conductor(loaded, turn) == run_conductor(
            ThinkerConductor.tiny(seed=3, config=ConductorConfig(do_sample=False)),
            recall.apply(turn),
        )


def test_stage_1_hints_leave_each_turns_own_question_out(tmp_path_factory):
    world = micro_world(tmp_path_factory)
    config = stage1_config(0.5, True, recall=True)
    assert config.recall == RecallConfig(tuple(known_questions()))
    config = dataclasses.replace(config, turns=TurnsConfig(typed_share=1.0), word_dropout=0.0,
                                 camera_off_share=0.0)  # fmt: skip
    examples, questions = examples_and_questions(iter_samples(world))
    with one_torch_thread():
        task = ConductorTask(examples, batch_size=4, seed=0, config=config, questions=questions)
        batch = task.batch(0)
    tok = task.conductor.tokenizer
    rows = [tok.decode(batch["input_ids"][k][batch["attention_mask"][k].bool()]) for k in range(4)]
    hinted = [r for r in rows if RECALL_SEPARATOR.strip() in r]
    assert len(hinted) >= 2  # the generated typed turns at least
    for k in range(2, 4):  # the generated rows: their own question is never the hint
        plan = task.turns.plan(k - 2)
        own = next(i for i in INTENTS if i.name == plan.intent).paraphrases[plan.paraphrase_index]
        assert own.replace(" ", "") not in rows[k].split(RECALL_SEPARATOR.strip())[-1]
    with pytest.raises(ValueError, match="questions"):
        ConductorTask(examples, batch_size=4, seed=0, config=config, questions=questions[:-1])
