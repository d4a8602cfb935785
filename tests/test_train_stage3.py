"""Stage 3: the Creator end to end (AR audio + DiT video through fusion), L_AR + L_DIFF."""

import pytest
import torch
from micro_world import PRESET, micro_world, one_torch_thread
from safetensors.torch import load_file

from mavid.checkpoint import load_checkpoint, save_checkpoint
from mavid.creator.model import CreatorModel
from mavid.train import TrainConfig, train_main
from mavid.train.data import iter_samples
from mavid.train.loop import read_log
from mavid.train.stage3 import CreatorJointTask


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(scope="module")
def init(tmp_path_factory):
    """Stands in for the creator-audio run's model/."""
    return save_checkpoint(CreatorModel.random(PRESET, 4), tmp_path_factory.mktemp("stage2"))


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def test_pairs_carry_the_clips_latents(world, init):
    model = load_checkpoint(init)
    task = CreatorJointTask(model, iter_samples(world), batch_size=2, seed=0)
    h = PRESET.media.height // PRESET.media.spatial_compression
    for (prev, cur), pairs in task.groups.items():
        for p in pairs:
            assert p.cur_latents.shape == (PRESET.creator.z_dim, 1 + (cur - 1) // 4, h, h)
            assert (p.prev_latents is None) == (prev == 0)
    batch = task.batch(1)
    assert batch.cur_latents.dim() == 5 and batch.cur_latents.shape[0] == 2


def test_joint_model_learns_a_repeated_batch(world, init):
    task = CreatorJointTask(load_checkpoint(init), iter_samples(world), batch_size=2, seed=0)
    batch = task.batch(0)
    opt = torch.optim.AdamW(task.trainable(), lr=3e-3)
    # the same step index: the same flow-matching noise and times every time
    out = [task.train_step(batch, opt, 1.0, 0) for _ in range(12)]
    assert out[-1]["loss"] < 0.6 * out[0]["loss"]
    assert out[-1]["l_ar"] < out[0]["l_ar"] and out[-1]["l_diff"] < out[0]["l_diff"]


def test_train_main_resumes_exactly_and_keeps_the_codecs(world, init, tmp_path):
    def cfg(out, **kw):
        return TrainConfig("creator-joint", world, out, steps=4, batch_size=2, lr=2e-3,
                           threads=1, init=init, progress=False, **kw)  # fmt: skip

    straight = train_main(cfg(tmp_path / "a"))
    train_main(cfg(tmp_path / "b", stop_after=2))
    pieces = train_main(cfg(tmp_path / "b"))
    wa = load_file(str(straight.loop.checkpoint / "model.safetensors"))
    wb = load_file(str(pieces.loop.checkpoint / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = read_log(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"l_ar", "l_diff", "loss"} <= rows[0].keys()

    before = load_checkpoint(init).state_dict()
    after = load_checkpoint(straight.model).state_dict()
    for name, value in before.items():
        frozen = name.startswith(("audio_codec.", "video_vae."))
        assert torch.equal(after[name], value) == frozen, name


def test_codecs_come_from_the_codecs_run_when_named(world, init, tmp_path):
    # the codecs run: same audio tokenizer as `init`, another (here: re-drawn) video VAE
    source = CreatorModel.random(PRESET, 4)
    with torch.no_grad():
        for p in source.video_vae.parameters():
            p.add_(0.01)
    codecs = save_checkpoint(source, tmp_path / "codecs")
    cfg = TrainConfig("creator-joint", world, tmp_path / "run", steps=1, batch_size=2,
                      threads=1, init=init, codecs=codecs, progress=False)  # fmt: skip
    model = load_checkpoint(train_main(cfg).model)
    vae, expected = model.video_vae.state_dict(), source.video_vae.state_dict()
    assert all(torch.equal(vae[k], v) for k, v in expected.items())

    other = CreatorModel.random(PRESET, 9)  # another audio tokenizer: codes would change meaning
    with torch.no_grad():
        other.audio_codec.codebooks.add_(1.0)
    bad = save_checkpoint(other, tmp_path / "bad")
    cfg = TrainConfig("creator-joint", world, tmp_path / "run2", steps=1, batch_size=2,
                      threads=1, init=init, codecs=bad, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="audio tokenizer differs"):
        train_main(cfg)


def test_batches_carry_reference_candidates_of_their_own_answer(world, init):
    task = CreatorJointTask(load_checkpoint(init), iter_samples(world), batch_size=4, seed=0)
    assert task.model.cfg.reference_anchor
    for pairs in task.groups.values():
        for p in pairs:
            assert p.ref_latents.shape[0] == 4 and p.ref_latents.shape[2] == 1
    first = next(p for p in task.groups[min(task.groups)] if p.prev_codes is None)
    # candidate 0 is the answer's first frame: the first clip's first latent
    assert torch.allclose(first.ref_latents[0, :, 0], first.cur_latents[:, 0], atol=1e-5)
    picks = {tuple(task.batch(step).ref_latents.flatten(1)[:, 0].tolist()) for step in range(6)}
    assert len(picks) > 1  # items draw among the candidates, step by step


def test_history_noise_marks_noised_history_and_changes_the_loss(world, init):
    from mavid.creator.training import noised_history

    prev = torch.randn(3, 4, 2, 6, 6)
    noisy, t = noised_history(prev, 0.3, torch.Generator().manual_seed(0))
    assert t.shape == (3, 2) and (t >= 0).all() and (t <= 0.3).all()
    assert torch.equal(t[:, 0], t[:, 1])  # one time per item
    assert not torch.equal(noisy, prev)

    def loss(history_noise):
        task = CreatorJointTask(load_checkpoint(init), iter_samples(world), batch_size=2,
                                seed=0, history_noise=history_noise)  # fmt: skip
        step = next(s for s in range(20) if task.batch(s).prev_latents is not None)
        opt = torch.optim.SGD(task.trainable(), lr=0.0)
        return task.train_step(task.batch(step), opt, 1.0, step)["l_diff"]

    assert loss(0.0) != loss(0.5)


def test_an_init_can_train_under_todays_creator_config(world, tmp_path):
    import dataclasses

    old = dataclasses.replace(
        PRESET, creator=dataclasses.replace(PRESET.creator, reference_anchor=False)
    )
    init = save_checkpoint(CreatorModel.random(old, 4), tmp_path / "old")
    cfg = TrainConfig("creator-joint", world, tmp_path / "run", steps=1, batch_size=2,
                      threads=1, init=init, creator_preset="micro", progress=False)  # fmt: skip
    trained = load_checkpoint(train_main(cfg).model)
    assert trained.cfg.reference_anchor and trained.preset.media == old.media
    bad = TrainConfig("creator-joint", world, tmp_path / "run2", steps=1, batch_size=2,
                      threads=1, init=init, creator_preset="tiny", progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="do not fit"):
        train_main(bad)


def test_phone_dropout_changes_the_ar_loss_and_is_validated(world, init, tmp_path):
    def l_ar(phone_dropout):
        task = CreatorJointTask(load_checkpoint(init), iter_samples(world), batch_size=4,
                                seed=0, phone_dropout=phone_dropout)  # fmt: skip
        opt = torch.optim.SGD(task.trainable(), lr=0.0)
        return task.train_step(task.batch(0), opt, 1.0, 0)["l_ar"]

    assert l_ar(0.0) == l_ar(0.0) and l_ar(0.0) != l_ar(0.9)
    with pytest.raises(ValueError, match="phone_dropout"):
        TrainConfig("creator-joint", world, tmp_path, phone_dropout=1.0)


def test_mouth_weight_puts_more_of_l_diff_on_the_mouth(world, init):
    from mavid.creator.training import l_diff
    from mavid.data.faces import mouth_region

    model = load_checkpoint(init)
    task = CreatorJointTask(model, iter_samples(world), batch_size=2, seed=0, mouth_weight=5.0)
    grid = PRESET.media.height // PRESET.media.spatial_compression
    rows, cols = mouth_region(grid, grid)
    assert task.region_weight.shape == (grid, grid)
    assert (task.region_weight[rows, cols] == 5.0).all() and task.region_weight.sum() < 5 * grid**2
    assert task.region_weight.min() == 1.0
    step = next(s for s in range(20) if task.batch(s).prev_latents is not None)
    batch = task.batch(step)
    prefix, _ = model.video_history(batch.prev_latents, batch.ref_latents)

    def loss(weight):
        with torch.no_grad():
            return float(l_diff(model, batch, prefix, None, torch.Generator().manual_seed(3),
                                weight))  # fmt: skip

    mouth_only = torch.zeros(grid, grid)
    mouth_only[rows, cols] = 1.0
    rest = 1.0 - mouth_only
    uniform, on_mouth, off_mouth = loss(None), loss(mouth_only), loss(rest)
    n = float(mouth_only.sum())
    # a weighted mean: uniform is the cell-count mix of the two regions' own means
    assert uniform == pytest.approx((n * on_mouth + (grid**2 - n) * off_mouth) / grid**2, rel=1e-4)
    w = (n * 5.0 * on_mouth + (grid**2 - n) * off_mouth) / (n * 5.0 + grid**2 - n)
    assert loss(task.region_weight) == pytest.approx(w, rel=1e-4)
    with pytest.raises(ValueError, match="latent grid"):
        loss(torch.ones(grid + 1, grid))
    with pytest.raises(ValueError, match="mouth_weight"):
        CreatorJointTask(model, iter_samples(world), batch_size=2, seed=0, mouth_weight=0.5)


def test_freeze_audio_keeps_the_decoder_and_trains_the_face(world, init, tmp_path):
    cfg = TrainConfig("creator-joint", world, tmp_path / "run", steps=2, batch_size=2, lr=2e-3,
                      threads=1, init=init, progress=False, freeze_audio=True,
                      mouth_weight=3.0)  # fmt: skip
    trained = load_checkpoint(train_main(cfg).model).state_dict()
    before = load_checkpoint(init).state_dict()
    for name, value in before.items():
        fixed = name.startswith(("audio_codec.", "video_vae.", "audio."))
        assert torch.equal(trained[name], value) == fixed, name
    with pytest.raises(ValueError, match="freeze_audio"):
        TrainConfig("creator-joint", world, tmp_path / "x", freeze_audio=True, speech_utterances=8)
    with pytest.raises(ValueError, match="freeze_audio"):
        TrainConfig("creator-audio", world, tmp_path / "x", freeze_audio=True)
    with pytest.raises(ValueError, match="creator-joint only"):
        TrainConfig("creator-audio", world, tmp_path / "x", mouth_weight=2.0)
    # a run begun before a setting existed resumes as that setting's default
    import json

    path = tmp_path / "run" / "train_config.json"
    saved = json.loads(path.read_text())
    del saved["mouth_weight"]
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"mouth_weight=1\.0"):
        train_main(cfg)
