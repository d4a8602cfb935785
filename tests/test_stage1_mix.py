"""Stage 1's data mix and augmentation: world + generated turns, word dropout, SpecAugment."""

import numpy as np
import pytest
import torch
from micro_world import micro_world, one_torch_thread

from mavid.conductor.format import SYSTEM_PROMPT, TINY_SYSTEM_PROMPT, TRANSCRIBE_PROMPT, plain_words
from mavid.conductor.stage1 import head_correct, spec_augment, stage1_loss
from mavid.conductor.thinker import ThinkerConductor, TinyThinkerShape
from mavid.data.domain import intent_by_name
from mavid.data.visitor_turns import TurnsConfig
from mavid.train import TrainConfig
from mavid.train.data import iter_samples
from mavid.train.main import build_task
from mavid.train.stage1 import ConductorTask, Stage1Config, examples_of, stage1_config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def _task(world, **kw) -> ConductorTask:
    return ConductorTask(examples_of(iter_samples(world)), batch_size=4, seed=0,
                         config=Stage1Config(**kw))  # fmt: skip


def test_batches_mix_generated_turns_and_are_pure_in_the_step(world):
    a, b = _task(world), _task(world)
    for step in (0, 5):
        ba, bb = a.batch(step), b.batch(step)
        assert ba.keys() == bb.keys()
        assert all(torch.equal(ba[k], bb[k]) for k in ba)
    # 3 of 4 slots are generated turns, new ones at every step
    b0, b1 = a.batch(0), a.batch(1)
    assert b0["input_ids"].shape != b1["input_ids"].shape or not torch.equal(
        b0["input_ids"], b1["input_ids"]
    )
    # world-only: every row's target is one of the world's directives
    world_only = _task(world, turn_share=0.0)
    assert world_only.turns is None and world_only.batch(0)["input_ids"].shape[0] == 4


def test_the_recipe_switch_gives_the_issue_7_recipe_or_the_original_one(world):
    on, off = stage1_config(0.75, True), stage1_config(0.0, False)
    assert on.spec_augment and on.word_dropout > 0 and on.head_weight > 1
    assert on.system_prompt == TINY_SYSTEM_PROMPT
    assert on.shape.audio_layers > 1 and on.transcribe_share > 0
    assert off == Stage1Config(turn_share=0.0, word_dropout=0.0, spec_augment=False,
                               head_tokens=0, head_weight=1.0, system_prompt=None,
                               transcribe_share=0.0, ctc_weight=0.0, camera_off_share=0.0,
                               shape=TinyThinkerShape())  # fmt: skip
    task = build_task(TrainConfig("conductor", world, world / "unused", val_samples=0,
                                  conductor_turns=0.5, conductor_augment=True))  # fmt: skip
    assert task.config.turn_share == 0.5 and task.turns is not None
    with pytest.raises(ValueError, match="turn_share"):
        Stage1Config(turn_share=1.5)


def test_spec_augment_masks_inside_the_real_frames_only():
    feats = torch.randn(3, 32, 200)
    mask = torch.zeros(3, 200, dtype=torch.long)
    mask[0, :200], mask[1, :120], mask[2, :60] = 1, 1, 1
    batch = {"input_features": feats.clone(), "feature_attention_mask": mask}
    spec_augment(batch, np.random.default_rng(0), time_masks=2, time_width=20,
                 freq_masks=2, freq_width=4)  # fmt: skip
    changed = batch["input_features"] != feats  # (3, 32, 200)
    assert changed.any()
    for c, n in enumerate((200, 120, 60)):
        # time masks stay within the chunk's real frames (freq masks span all frames)
        cols = changed[c].all(0).nonzero().flatten()
        assert (cols < n).all()
    again = {"input_features": feats.clone(), "feature_attention_mask": mask}
    spec_augment(again, np.random.default_rng(0), time_masks=2, time_width=20,
                 freq_masks=2, freq_width=4)  # fmt: skip
    assert torch.equal(again["input_features"], batch["input_features"])
    typed = {"input_ids": torch.ones(1, 3)}
    spec_augment(typed, np.random.default_rng(0))  # no audio: nothing to mask
    assert typed.keys() == {"input_ids"}


def test_head_weighted_loss_is_the_weighted_mean_of_the_token_losses(world):
    task = _task(world, turn_share=0.0)
    batch = task.batch(0)
    model = task.thinker.eval()
    with torch.no_grad():
        plain = stage1_loss(model, batch)
        same = stage1_loss(model, batch, head_tokens=8, head_weight=1.0)
        weighted = stage1_loss(model, batch, head_tokens=2, head_weight=3.0)
        model.model.rope_deltas = None
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    labels = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), labels.clamp_min(0), reduction="none"
    )
    target = labels != -100
    head = target & (target.long().cumsum(-1) <= 2)  # the first two directive tokens of a row
    w = target.float() + 2.0 * head.float()
    assert torch.allclose(plain, ce[target].mean(), atol=1e-5) and torch.equal(plain, same)
    assert torch.allclose(weighted, (ce * w).sum() / w.sum(), atol=1e-5)
    assert head.sum() == 2 * labels.shape[0]


def test_the_trained_system_prompt_is_saved_and_used_after_loading(world, tmp_path):
    task = _task(world)
    batch = task.batch(0)
    n_short = batch["input_ids"].shape[1]
    task.save(tmp_path / "short")
    loaded = ThinkerConductor.from_pretrained(tmp_path / "short")
    assert loaded.system_prompt == TINY_SYSTEM_PROMPT != loaded.config.system_prompt
    turn = examples_of(iter_samples(world))[0][0]
    prompt = loaded.encoder.encode_prompt(turn, loaded.system_prompt)["input_ids"]
    assert loaded.tokenizer.decode(prompt[0]).count(TINY_SYSTEM_PROMPT) == 1
    # the long prompt (system_prompt=None) is the configured one, and much longer
    long_task = _task(world, system_prompt=None)
    assert long_task.conductor.system_prompt == SYSTEM_PROMPT
    assert long_task.batch(0)["input_ids"].shape[1] > n_short + 100


def test_head_correct_looks_at_the_first_directive_tokens_only():
    labels = torch.tensor([[-100, -100, 5, 6, 7, -100], [-100, 5, 6, 7, 8, 9]])
    logits = torch.zeros(2, 6, 10)
    for b in range(2):  # position t predicts labels[t + 1]
        for t in range(5):
            logits[b, t, max(0, int(labels[b, t + 1]))] = 1.0
    assert head_correct(logits, labels, 2).tolist() == [True, True]
    logits[1, 2, 0] = 5.0  # the third directive token of row 1 goes wrong
    assert head_correct(logits, labels, 2).tolist() == [True, True]
    assert head_correct(logits, labels, 3).tolist() == [True, False]


def test_spoken_generated_turns_can_be_transcription_rows(world):
    task = _task(world, turn_share=1.0, transcribe_share=1.0, word_dropout=0.0,
                 spec_augment=False, turns=TurnsConfig(typed_share=0.0))  # fmt: skip
    batch = task.batch(0)
    tok = task.conductor.tokenizer
    for k in range(4):
        plan = task.turns.plan(k)
        words = plain_words(intent_by_name(plan.intent).paraphrases[plan.paraphrase_index])
        row = batch["input_ids"][k][batch["attention_mask"][k].bool()]
        target = batch["labels"][k][batch["labels"][k] != -100]
        assert TRANSCRIBE_PROMPT in tok.decode(row)
        assert tok.decode(target).replace(" ", "") == (words + "<|im_end|>").replace(" ", "")


def test_ctc_targets_spell_the_words_and_mark_rows_without_them():
    from mavid.conductor.stage1 import CTC_ALPHABET, ctc_targets

    ids, lengths = ctc_targets(["Hi, I'm here!", None, ""])
    assert lengths.tolist() == [11, 0, 0]
    spelled = "".join(CTC_ALPHABET[i - 1] for i in ids[0, :11].tolist())
    assert spelled == "hi i'm here" and (ids[1:] == 0).all()


def test_the_audio_tower_learns_from_ctc_on_the_spoken_rows(world):
    task = _task(world, ctc_weight=1.0, transcribe_share=0.0)
    batch = task.batch(0)
    spoken = batch["ctc_lengths"] > 0
    assert spoken.any() and not spoken.all()  # world rows and typed turns have no transcript
    opt = torch.optim.AdamW(task.trainable(), lr=3e-3)
    out = [task.train_step(task.batch(0), opt, 1.0, 0) for _ in range(10)]
    assert {"l_directive", "l_ctc"} <= out[0].keys() and out[0]["l_ctc"] > 0
    assert out[-1]["l_ctc"] < out[0]["l_ctc"]
    # the head trains beside the Thinker but is not the Thinker's
    assert task.model.ctc_head is not None and task.thinker is task.conductor.model
    assert not any(k.startswith("ctc") for k in task.thinker.state_dict())


def test_turns_with_the_camera_off_have_no_frames_and_the_nothing_shown_answer(world):
    from mavid.conductor.format import M_BOS

    task = _task(world, turn_share=1.0, camera_off_share=1.0, transcribe_share=0.0)
    tok = task.conductor.tokenizer
    seen_visual = False
    for step in range(6):
        batch = task.batch(step)
        assert "pixel_values_videos" not in batch  # no row has camera frames
        for k in range(task.batch_size):
            plan = task.turns.plan(step * task.batch_size + k)
            intent = intent_by_name(plan.intent)
            if intent.visual:
                seen_visual = True
                labels = batch["labels"][k][batch["labels"][k] >= 0]
                said = tok.decode(labels).split(M_BOS)[0].strip()
                assert said == intent.answer_for("none").speech.strip()
    assert seen_visual
    with pytest.raises(ValueError, match="camera_off_share"):
        Stage1Config(camera_off_share=2.0)
