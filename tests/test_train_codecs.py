"""Training the tiny codecs (audio tokenizer + video VAE) on a built world."""

import dataclasses

import pytest
import torch
from micro_world import PRESET, micro_world, one_torch_thread
from safetensors.torch import load_file

from mavid.checkpoint import load_checkpoint
from mavid.config import MICRO
from mavid.creator.model import CreatorModel
from mavid.train import TrainConfig, train_main
from mavid.train.codecs import CodecsTask, media_tracks
from mavid.train.data import iter_samples
from mavid.train.loop import read_log


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def task(world, seed=0):
    return CodecsTask(media_tracks(iter_samples(world), PRESET), PRESET, 2, seed)


def test_the_audio_codec_is_fitted_and_the_vae_learns(world):
    t = task(world)
    batch = t.batch(0)
    assert batch.audio.shape == (2, 9 * 960) and batch.video.shape == (2, 3, 9, 48, 48)
    assert -1 <= batch.video.min() < batch.video.max() <= 1
    # the mel codec was fitted when the task was built: its stages refine, and its codes
    # describe the batch's speech far better than a random codec's
    errors = [t.fit_errors[f"codebook_{k}"] for k in range(PRESET.audio_tokenizer.num_codebooks)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5
    codec, fresh = t.model.audio_codec, CreatorModel.random(PRESET, 0).audio_codec
    fresh.feature_mean.copy_(codec.feature_mean)
    fresh.feature_std.copy_(codec.feature_std)
    feats = codec.features(batch.audio)
    fitted = (codec.lookup(codec.encode(batch.audio)) - feats).pow(2).mean()
    random = (fresh.lookup(fresh.encode(batch.audio)) - feats).pow(2).mean()
    assert fitted < 0.5 * random
    assert not any(p is codec.codebooks for p in t.trainable())  # k-means, not gradients
    opt = torch.optim.AdamW(t.trainable(), lr=1e-2)
    losses = [t.train_step(batch, opt, 1.0, 0) for _ in range(12)]
    assert losses[-1]["video_l1"] < losses[0]["video_l1"]


def test_a_learned_waveform_codec_trains_beside_the_vae(world):
    preset = dataclasses.replace(
        PRESET, audio_tokenizer=dataclasses.replace(PRESET.audio_tokenizer, kind="rvq_conv")
    )
    t = CodecsTask(media_tracks(iter_samples(world), preset), preset, 2, 0)
    batch = t.batch(0)
    opt = torch.optim.AdamW(t.trainable(), lr=3e-3)
    losses = [t.train_step(batch, opt, 1.0, 0) for _ in range(12)]
    assert losses[-1]["audio_l1"] < losses[0]["audio_l1"]
    assert losses[-1]["loss"] < losses[0]["loss"]


def test_batches_are_a_function_of_seed_and_step(world):
    a, b = task(world), task(world)
    assert torch.equal(a.batch(3).audio, b.batch(3).audio)
    assert torch.equal(a.batch(3).video, b.batch(3).video)
    assert not torch.equal(a.batch(3).audio, a.batch(4).audio)


def test_train_main_resumes_exactly_and_leaves_the_generator_untouched(world, tmp_path):
    def cfg(out, **kw):
        return TrainConfig("codecs", world, out, steps=4, batch_size=2, lr=2e-3, threads=1,
                           preset=PRESET, checkpoint_every=2, progress=False, **kw)  # fmt: skip

    straight = train_main(cfg(tmp_path / "a"))
    part = train_main(cfg(tmp_path / "b", stop_after=2))
    assert part.step == 2 and not part.finished and part.model is None
    pieces = train_main(cfg(tmp_path / "b"))
    assert pieces.finished and pieces.loop.resumed_from == 2
    wa = load_file(str(straight.loop.checkpoint / "model.safetensors"))
    wb = load_file(str(pieces.loop.checkpoint / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    rows = read_log(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert {"audio_vq_error", "video_l1"} <= rows[0].keys()
    assert (tmp_path / "b" / "loss.png").stat().st_size > 1000

    model = load_checkpoint(straight.model)  # mavid/checkpoint.py format: stage 2's init
    fresh = CreatorModel.random(PRESET, 0)
    trained = model.state_dict()
    for name, value in fresh.state_dict().items():
        same = torch.equal(trained[name], value)
        assert same != name.startswith(("audio_codec.", "video_vae.")), name


def test_a_world_of_another_size_is_a_clear_error(world, tmp_path):
    cfg = TrainConfig("codecs", world, tmp_path, steps=2, preset=MICRO, threads=1, progress=False)
    with pytest.raises(ValueError, match=r"world media .* the preset wants"):
        train_main(cfg)


def test_a_codecs_run_from_an_init_keeps_its_tokenizer_and_fits_the_latent_scale(world, tmp_path):
    base = dict(steps=3, batch_size=2, lr=2e-3, threads=1, preset=PRESET, progress=False)
    tokenizer = train_main(TrainConfig("codecs", world, tmp_path / "tok", **{**base, "steps": 1}))
    run = train_main(TrainConfig("codecs", world, tmp_path / "vae", init=tokenizer.model, **base))
    source, model = load_checkpoint(tokenizer.model), load_checkpoint(run.model)
    # the tokenizer is the init's, tensor for tensor: stage 2 may start from either run
    mine, theirs = model.audio_codec.state_dict(), source.audio_codec.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert not torch.equal(
        model.video_vae.decoder[0].weight, source.video_vae.decoder[0].weight
    )  # the VAE trained
    # the latent scale was measured at the end and saved in the config: unit-variance latents
    scale = model.preset.video_vae.latent_scale
    assert scale != 1.0 and model.video_vae.config.latent_scale == scale
    task = CodecsTask(media_tracks(iter_samples(world), model.preset), model.preset, 4, 0)
    with torch.no_grad():
        z = model.video_vae.encode(task.batch(0).video)
    assert 0.7 < float(z.std()) < 1.4


def test_the_vae_loss_adds_the_l1_of_the_reconstructions_spatial_gradients():
    vae = CreatorModel.random(PRESET, 0).video_vae
    video = torch.zeros(1, 3, 5, 48, 48)
    video[..., 16:32, 16:32] = 1.0  # a hard-edged square
    losses = vae.reconstruction_loss(video)
    with torch.no_grad():
        recon = vae.decode(vae.encode(video))
    edges = sum((recon.diff(dim=d) - video.diff(dim=d)).abs().mean() for d in (-1, -2))
    assert torch.allclose(losses["edges"], edges, rtol=1e-4)
    assert torch.allclose(losses["loss"], losses["l1"] + losses["edges"] + losses["latent_l2"])


def test_the_vae_can_train_on_crops_on_the_latent_grid(world):
    tracks = media_tracks(iter_samples(world), PRESET)
    t = CodecsTask(tracks, PRESET, 3, 0, crop=24)
    batch = t.batch(2)
    assert batch.video.shape == (3, 3, 9, 24, 24)
    # each crop is a window of some clip of the world, at a multiple of 8 pixels
    found = any(
        torch.equal(frames[:, f : f + 9, y : y + 24, x : x + 24], batch.video[i])
        for t_ in tracks
        for frames in [torch.from_numpy(t_.frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0]
        for i in range(3)
        for f in range(frames.shape[1] - 8)
        for y in range(0, 48 - 23, 8)
        for x in range(0, 48 - 23, 8)
    )
    assert found
    with pytest.raises(ValueError, match="multiple of 8"):
        CodecsTask(tracks, PRESET, 3, 0, crop=20)
    with pytest.raises(ValueError, match="video_crop"):
        TrainConfig("codecs", world, world, video_crop=12)
