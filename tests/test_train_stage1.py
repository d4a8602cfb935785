"""Stage 1: the Conductor (tiny Thinker) trained on the world's turns and directives."""

import numpy as np
import pytest
import torch
from micro_world import PRESET, micro_world, one_torch_thread
from safetensors.torch import load_file

from mavid.conductor.thinker import ThinkerConductor
from mavid.data.dialogue import USER_SAMPLE_RATE
from mavid.train import TrainConfig, train_main
from mavid.train.data import iter_samples
from mavid.train.evaluate import conductor_score
from mavid.train.loop import read_log
from mavid.train.stage1 import ConductorTask, examples_of

SPEC = PRESET.media


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def test_examples_are_the_turn_as_realtime_hands_it_and_the_directive(world):
    samples = list(iter_samples(world))
    examples = examples_of(samples)
    assert len(examples) == len(samples)
    kinds = set()
    for sample, (turn, speech, motion) in zip(samples, examples, strict=True):
        assert (speech, motion) == (sample.answer.speech, sample.answer.motion)
        assert len(turn.video) == sample.user_frames.shape[0] > 0
        if sample.user_audio is None:  # typed: text only
            assert turn.text == sample.question and turn.audio is None
            kinds.add("typed")
        else:  # spoken: audio only, as the VAD hands it over
            assert turn.text == "" and turn.audio_sample_rate == USER_SAMPLE_RATE
            assert np.array_equal(turn.audio, sample.user_audio)
            kinds.add("spoken")
    assert kinds == {"typed", "spoken"}  # this world has both


def test_conductor_learns_a_repeated_batch(world):
    task = ConductorTask(examples_of(iter_samples(world)), batch_size=2, seed=0)
    batch = task.batch(0)
    opt = torch.optim.AdamW(task.trainable(), lr=3e-3)
    losses = [task.train_step(batch, opt, 1.0, 0)["loss"] for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0]


def test_train_main_resumes_exactly_and_saves_a_loadable_conductor(world, tmp_path):
    def cfg(out, **kw):
        return TrainConfig("conductor", world, out, steps=4, batch_size=2, lr=2e-3, threads=1,
                           checkpoint_every=2, progress=False, **kw)  # fmt: skip

    straight = train_main(cfg(tmp_path / "a"))
    assert train_main(cfg(tmp_path / "b", stop_after=3)).step == 3
    pieces = train_main(cfg(tmp_path / "b"))
    assert pieces.loop.resumed_from == 3 and pieces.finished
    wa = load_file(str(straight.loop.checkpoint / "model.safetensors"))
    wb = load_file(str(pieces.loop.checkpoint / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = read_log(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    # held-out "val" turns scored at each checkpoint (and run end), in the same rows
    assert [r["step"] for r in rows if "val_loss" in r] == [2, 3, 4]
    assert (tmp_path / "b" / "loss.png").is_file()

    loaded = ThinkerConductor.from_pretrained(straight.model)
    state = loaded.model.state_dict()
    # the checkpoint holds what trains (the Thinker, and a CTC head where the recipe has one);
    # the model/ the Thinker alone
    thinker = {k.removeprefix("thinker."): v for k, v in wa.items() if k.startswith("thinker.")}
    assert state.keys() == thinker.keys()
    assert all(torch.equal(state[k], v) for k, v in thinker.items())
    assert len(loaded.tokenizer) == len(ThinkerConductor.from_pretrained(pieces.model).tokenizer)


def test_resume_with_other_settings_is_refused(world, tmp_path):
    base = dict(steps=4, batch_size=2, threads=1, progress=False)
    train_main(TrainConfig("conductor", world, tmp_path, stop_after=1, **base))
    with pytest.raises(ValueError, match="batch_size=2, now 3"):
        train_main(TrainConfig("conductor", world, tmp_path, **{**base, "batch_size": 3}))


def test_trained_conductor_answers_its_training_turns(world, tmp_path):
    """Train -> model/ -> greedy decoding scored by mavid.eval.conductor: the whole path."""
    # the world's own turns only (the original recipe), so they can be learned in 60 steps
    cfg = TrainConfig("conductor", world, tmp_path, steps=60, batch_size=3, lr=5e-3,
                      warmup_steps=0, threads=1, checkpoint_every=1000, progress=False,
                      conductor_turns=0.0, conductor_augment=False)  # fmt: skip
    result = train_main(cfg)
    score, directives = conductor_score(result.model, world, "train", progress=False)
    assert score.count == len(list(iter_samples(world))) == len(directives)
    assert score.intent_accuracy == 1.0 and score.format_validity == 1.0


def test_a_folder_with_checkpoints_is_not_overwritten_without_resume(world, tmp_path):
    base = dict(steps=4, batch_size=2, threads=1, progress=False)
    train_main(TrainConfig("conductor", world, tmp_path, stop_after=1, **base))
    saved = (tmp_path / "train_config.json").read_text()
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train_main(TrainConfig("conductor", world, tmp_path, resume=False, seed=9, **base))
    assert (tmp_path / "train_config.json").read_text() == saved


def test_a_conductor_run_can_go_on_from_a_trained_conductor(world, tmp_path):
    base = dict(batch_size=2, lr=2e-3, threads=1, val_samples=0, progress=False)
    first = train_main(TrainConfig("conductor", world, tmp_path / "a", steps=2, **base))
    # a learning rate too small to move anything: the result is the init's weights
    more = train_main(TrainConfig("conductor", world, tmp_path / "b", steps=2, init=first.model,
                                  **{**base, "lr": 1e-12}))  # fmt: skip
    before = ThinkerConductor.from_pretrained(first.model)
    after = ThinkerConductor.from_pretrained(more.model)
    assert before.tokenizer.get_vocab() == after.tokenizer.get_vocab()
    assert before.model.config.text_config.hidden_size == after.model.config.text_config.hidden_size
    a, b = before.model.state_dict(), after.model.state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    from mavid.train.stage1 import TINY_STAGE1_SHAPE

    fresh = ThinkerConductor.tiny(tokenizer=before.tokenizer, shape=TINY_STAGE1_SHAPE)
    fresh = fresh.model.state_dict()
    assert any(not torch.allclose(a[k], fresh[k]) for k in a)  # the init was no fresh model
