import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from mavid.checkpoint import CheckpointError, load_checkpoint, read_preset, save_checkpoint
from mavid.config import MICRO, TINY
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator


@pytest.fixture
def saved(tmp_path):
    model = CreatorModel.random(MICRO, 3)
    save_checkpoint(model, tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def test_round_trip_gives_bitwise_equal_clips(saved):
    model, path = saved
    assert read_preset(path) == MICRO
    loaded = load_checkpoint(path)
    assert loaded.preset == MICRO
    clips = []
    for m in (model, loaded):
        stream = MavidCreator(m).new_stream(seed=11)
        clips.append([stream.next_clip("round trip", "nod") for _ in range(2)])
    for a, b in zip(*clips, strict=True):
        assert np.array_equal(a.audio, b.audio) and np.array_equal(a.frames, b.frames)


def test_the_checkpoint_holds_the_codecs(saved):
    _, path = saved
    names = load_file(str(path / "model.safetensors")).keys()
    assert any(n.startswith("audio_codec.") for n in names)
    assert any(n.startswith("video_vae.") for n in names)


def test_truncated_file_names_file_and_tensor(saved):
    _, path = saved
    file = path / "model.safetensors"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated.*tensor '"):
        load_checkpoint(path)
    file.write_bytes(data[:5])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated"):
        load_checkpoint(path)


def test_mismatched_shape_names_the_tensor(saved):
    _, path = saved
    file = path / "model.safetensors"
    state = load_file(str(file))
    state["audio.heads.weight"] = torch.zeros(3, 3)
    save_file(state, str(file))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*'audio\.heads\.weight'.*shape"):
        load_checkpoint(path)


def test_missing_and_extra_tensors(saved):
    _, path = saved
    file = path / "model.safetensors"
    state = load_file(str(file))
    state.pop("video.head.bias")
    save_file(state, str(file))
    with pytest.raises(CheckpointError, match=r"missing tensor 'video\.head\.bias'"):
        load_checkpoint(path)
    state["video.head.bias"] = torch.zeros(16)
    state["stray"] = torch.zeros(1)
    save_file(state, str(file))
    with pytest.raises(CheckpointError, match=r"unexpected tensor 'stray'"):
        load_checkpoint(path)


def test_config_mismatch_and_bad_config(saved, tmp_path):
    _, path = saved
    cfg = json.loads((path / "config.json").read_text())
    cfg["preset"] = TINY.to_dict()  # weights of micro, config of tiny
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*tensor 'audio\."):
        load_checkpoint(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json.*not valid JSON"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(CheckpointError, match="format"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"config\.json.*not found"):
        load_checkpoint(tmp_path / "nowhere")


def test_half_precision_storage_loads_back_as_float32(tmp_path):
    model = CreatorModel.random(MICRO, 3)
    full = save_checkpoint(model, tmp_path / "full")
    half = save_checkpoint(model, tmp_path / "half", storage_dtype=torch.float16)
    size = (half / "model.safetensors").stat().st_size
    assert size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = load_checkpoint(half)
    for name, value in model.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype == value.dtype, name
        assert torch.allclose(got, value, rtol=1e-3, atol=1e-4), name
