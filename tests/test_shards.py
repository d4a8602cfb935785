"""Tar shards: media codecs round-trip, a sample survives encode/decode, the reader."""

import tarfile

import numpy as np
import pytest

from mavid.data.dialogue import plan_sample, render_sample
from mavid.data.shards import (
    decode_audio,
    decode_video,
    encode_audio,
    encode_sample,
    encode_video,
    iter_shard,
    sample_from_members,
    write_shard,
)


@pytest.fixture(scope="module")
def sample():
    plan = next(p for p in (plan_sample(2, i) for i in range(50)) if not p.typed)
    return render_sample(plan, 2)


def test_video_round_trip_is_close(sample):
    data = encode_video(sample.frames, 25)
    back = decode_video(data)
    assert back.shape == sample.frames.shape
    mse = np.mean((back.astype(float) - sample.frames.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # PSNR in dB
    assert encode_video(sample.frames, 25) == data  # same bytes every time
    with pytest.raises(ValueError, match="uint8"):
        encode_video(sample.frames.astype(np.float32), 25)


def test_audio_round_trip_is_lossless_to_16_bits():
    x = np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 440).astype(np.float32) * 0.5
    back, sr = decode_audio(encode_audio(x, 24_000))
    assert sr == 24_000 and back.shape == x.shape
    assert np.abs(back - x).max() < 2 / 32767


def test_sample_survives_the_tar(tmp_path, sample):
    members = encode_sample(sample)
    write_shard(tmp_path / "s.tar", [(sample.plan.key, members)])
    assert not list(tmp_path.glob("*.tmp"))
    [(key, got)] = list(iter_shard(tmp_path / "s.tar"))
    assert key == sample.plan.key and got == members
    back = sample_from_members(got)
    assert back.plan == sample.plan
    assert back.clips == sample.clips and back.words == sample.words
    assert back.avatar_identity == sample.avatar_identity
    assert back.directive == sample.directive and back.question == sample.question
    np.testing.assert_array_equal(back.user_frames, sample.user_frames)  # PNG: lossless
    np.testing.assert_array_equal(back.mouth, sample.mouth)
    assert np.abs(back.audio - sample.audio).max() < 2 / 32767
    assert back.user_audio is not None and back.user_audio.shape == sample.user_audio.shape
    assert back.frames.shape == sample.frames.shape


def test_tar_members_are_grouped_by_key(tmp_path, sample):
    members = encode_sample(sample)
    write_shard(tmp_path / "two.tar", [("a-1", members), ("a-2", members)])
    assert [k for k, _ in iter_shard(tmp_path / "two.tar")] == ["a-1", "a-2"]
    with tarfile.open(tmp_path / "two.tar") as tar:
        names = tar.getnames()
    assert "a-1.video.mp4" in names and "a-2.json" in names
    assert all(tar_info_mtime == 0 for tar_info_mtime in _mtimes(tmp_path / "two.tar"))


def _mtimes(path):
    with tarfile.open(path) as tar:
        return [m.mtime for m in tar.getmembers()]


def test_corrupt_members_fail_clearly():
    with pytest.raises(ValueError, match="decodable video"):
        decode_video(b"not a video")
    with pytest.raises(ValueError, match="decodable audio"):
        decode_audio(b"not audio")
    with pytest.raises(ValueError, match="missing tar members"):
        sample_from_members({"json": b"{}"})


def test_threaded_decoding_gives_the_samples_in_manifest_order(tmp_path_factory):
    from micro_world import micro_world

    from mavid.data.shards import WorldDataset

    world = micro_world(tmp_path_factory)
    one = list(WorldDataset(world, "train", decode_threads=1))
    many = list(WorldDataset(world, "train", decode_threads=3))
    assert [s.plan.key for s in one] == [s.plan.key for s in many] == WorldDataset(world).keys()
    for a, b in zip(one, many, strict=True):
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
