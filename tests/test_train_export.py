"""export_tiny: the shipped directory assembled from the stages' results, loadable by the agent."""

import json

import pytest
import torch

from mavid.avatar import load_avatar_model
from mavid.checkpoint import CheckpointError, save_checkpoint
from mavid.conductor.thinker import ThinkerConductor
from mavid.config import MICRO
from mavid.creator.model import CreatorModel
from mavid.interfaces import CancelToken, UserTurn
from mavid.train import export_tiny, plot_losses


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    creator = save_checkpoint(CreatorModel.random(MICRO, 1), root / "joint" / "model")
    (root / "joint" / "train_config.json").write_text(json.dumps({"stage": "creator-joint"}))
    conductor = root / "conductor" / "model"
    ThinkerConductor.tiny(seed=2).save_pretrained(conductor)
    log = root / "conductor" / "log.jsonl"
    log.write_text("".join(json.dumps({"step": i, "loss": 5.0 / i}) + "\n" for i in (1, 2, 3)))
    return creator, conductor, plot_losses(log, root / "conductor" / "loss.png")


def test_export_is_what_the_agent_loads(results, tmp_path):
    creator, conductor, png = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny", plots={"conductor": png})
    assert (dest / "creator" / "model.safetensors").is_file()
    assert (dest / "loss-conductor.png").read_bytes() == png.read_bytes()
    provenance = json.loads((dest / "provenance.json").read_text())
    assert provenance["runs"]["creator"] == {"stage": "creator-joint"}
    assert "creator/model.safetensors" in provenance["files"]

    model = load_avatar_model(dest)
    weights = model.creator.model.state_dict()
    expected = CreatorModel.random(MICRO, 1).state_dict()
    assert all(torch.equal(weights[k], v) for k, v in expected.items())
    clip = model.creator.new_stream(seed=0).next_clip("hello", "nod")
    assert clip.frames.shape[0] == MICRO.media.clip_frames
    assert isinstance(model.conductor, ThinkerConductor)
    list(model.conductor.stream(UserTurn(text="hi"), CancelToken()))  # the exported one runs


def test_a_bad_input_leaves_the_previous_export_untouched(results, tmp_path):
    creator, conductor, _ = results
    dest = export_tiny(creator, conductor, tmp_path / "tiny")
    before = sorted(p.name for p in dest.rglob("*"))
    with pytest.raises(CheckpointError, match=r"config\.json"):
        export_tiny(tmp_path / "nowhere", conductor, dest)
    with pytest.raises(FileNotFoundError, match="loss plot"):
        export_tiny(creator, conductor, dest, plots={"codecs": tmp_path / "missing.png"})
    assert sorted(p.name for p in dest.rglob("*")) == before
