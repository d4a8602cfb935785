"""Stage 2: the Creator's AR audio decoder trained on the world's clip pairs (L_AR)."""

import pytest
import torch
from micro_world import PRESET, micro_world, one_torch_thread
from safetensors.torch import load_file

from mavid.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mavid.creator.model import CreatorModel
from mavid.train import TrainConfig, train_main
from mavid.train.data import iter_samples
from mavid.train.stage2 import CreatorAudioTask

FIRST, CLIP = PRESET.media.first_clip_frames, PRESET.media.clip_frames


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return micro_world(tmp_path_factory)


@pytest.fixture(scope="module")
def init(tmp_path_factory):
    """Stands in for the codecs run's model/: a Creator checkpoint (random codecs suffice)."""
    return save_checkpoint(CreatorModel.random(PRESET, 3), tmp_path_factory.mktemp("codecs"))


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


def test_clip_pairs_follow_the_answers_clips(world, init):
    model = load_checkpoint(init)
    samples = list(iter_samples(world))
    task = CreatorAudioTask(model, samples, batch_size=2, seed=0)
    assert list(task.groups) == [(0, FIRST), (FIRST, CLIP), (CLIP, CLIP)]
    assert len(task.groups[(0, FIRST)]) == len(samples)  # one first clip per answer
    assert task.num_pairs == sum(len(s.clips) for s in samples)
    # clip j's codes are the slice of the whole answer's codes; its history is clip j-1
    s = samples[0]
    codes = model.audio_codec.encode(torch.from_numpy(s.speech_audio))
    first, second = task.groups[(0, FIRST)][0], task.groups[(FIRST, CLIP)][0]
    assert torch.equal(first.cur_codes, codes[:, :FIRST])
    assert torch.equal(second.cur_codes, codes[:, FIRST : FIRST + CLIP])
    assert second.prev_codes is first.cur_codes and first.prev_codes is None
    assert (first.speech, second.speech) == (s.clips[0].speech, s.clips[1].speech)
    batch = task.batch(5)
    assert batch.cur_codes.shape[0] == 2 and batch.cur_codes.dtype == torch.int64


def test_audio_decoder_learns_a_repeated_batch(world, init):
    task = CreatorAudioTask(load_checkpoint(init), iter_samples(world), batch_size=2, seed=0)
    batch = task.batch(0)
    opt = torch.optim.AdamW(task.trainable(), lr=3e-3)
    losses = [task.train_step(batch, opt, 1.0, 0)["loss"] for _ in range(12)]
    assert losses[-1] < 0.6 * losses[0]


def test_train_main_resumes_exactly_and_trains_the_audio_decoder_only(world, init, tmp_path):
    def cfg(out, **kw):
        return TrainConfig("creator-audio", world, out, steps=4, batch_size=2, lr=2e-3,
                           threads=1, init=init, progress=False, **kw)  # fmt: skip

    straight = train_main(cfg(tmp_path / "a"))
    train_main(cfg(tmp_path / "b", stop_after=2))
    pieces = train_main(cfg(tmp_path / "b"))
    wa = load_file(str(straight.loop.checkpoint / "model.safetensors"))
    wb = load_file(str(pieces.loop.checkpoint / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    before = load_checkpoint(init).state_dict()
    after = load_checkpoint(straight.model).state_dict()
    for name, value in before.items():
        # the F_v cross-attention has no video to read in stage 2: no gradient, unchanged
        trained = name.startswith("audio.") and ".fuse_video." not in name
        assert torch.equal(after[name], value) != trained, name


def test_creator_stages_need_an_init(world, tmp_path):
    with pytest.raises(ValueError, match="starts from the previous stage"):
        train_main(TrainConfig("creator-audio", world, tmp_path / "a", threads=1))
    with pytest.raises(CheckpointError, match="not found"):
        train_main(TrainConfig("creator-audio", world, tmp_path / "b", init=tmp_path, threads=1))
