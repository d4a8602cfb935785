import pytest

from mavid.avatar import AvatarModel, load_avatar_model
from mavid.checkpoint import save_checkpoint
from mavid.config import MICRO, TINY
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator
from mavid.interfaces import Conductor, Creator


def test_default_bundle_is_tiny_and_deterministic():
    bundle = load_avatar_model(seed=1)
    assert isinstance(bundle, AvatarModel)
    assert isinstance(bundle.creator, Creator) and isinstance(bundle.conductor, Conductor)
    assert bundle.creator.spec == TINY.media
    again = load_avatar_model(seed=1)
    a = bundle.creator.model.state_dict()
    b = again.creator.model.state_dict()
    assert all((a[k] == b[k]).all() for k in list(a)[:20])


def test_bundle_from_a_checkpoint_directory(tmp_path):
    save_checkpoint(CreatorModel.random(MICRO, 0), tmp_path / "creator")
    bundle = load_avatar_model(tmp_path)
    assert isinstance(bundle.creator, MavidCreator) and bundle.creator.spec == MICRO.media
    clip = bundle.creator.new_stream(seed=0).next_clip("hi", "")
    assert clip.frames.shape == (9, 32, 32, 3)
    # a Creator checkpoint directory may also be given directly
    assert load_avatar_model(tmp_path / "creator").creator.spec == MICRO.media


def test_remote_conductor_and_errors(tmp_path):
    from mavid.conductor import OpenAIConductor

    save_checkpoint(CreatorModel.random(MICRO, 0), tmp_path / "creator")
    bundle = load_avatar_model(
        tmp_path,
        conductor_url="http://127.0.0.1:9/v1",
        conductor_model="qwen",
        conductor_api_key="k",
    )
    assert isinstance(bundle.conductor, OpenAIConductor)
    with pytest.raises(ValueError, match="conductor_model"):
        load_avatar_model(tmp_path, conductor_url="http://127.0.0.1:9/v1")
    with pytest.raises(FileNotFoundError):
        load_avatar_model(tmp_path / "missing")
