import dataclasses

import pytest
import torch

from mavid.config import MICRO, PAPER, PAPER_CREATOR_PARAMS, TINY, Preset, get_preset
from mavid.creator.model import CreatorModel
from mavid.interfaces import MediaSpec


def test_tiny_media_timing_is_mediaspec_defaults():
    assert TINY.media == MediaSpec()
    assert TINY.audio_tokenizer.hop_length == 960
    assert TINY.audio_tokenizer.frame_rate == TINY.media.audio_token_rate == 25
    assert TINY.audio_tokenizer.num_codebooks == TINY.creator.num_codebooks == 8
    assert TINY.video_vae.spatial_compression == TINY.media.spatial_compression == 8
    assert TINY.video_vae.temporal_compression == TINY.media.temporal_compression == 4


@pytest.mark.parametrize("preset", [TINY, PAPER, MICRO])
def test_preset_dict_round_trip(preset):
    assert Preset.from_dict(preset.to_dict()) == preset


def test_from_dict_rejects_unknown_fields():
    data = TINY.to_dict()
    data["creator"]["not_a_field"] = 1
    with pytest.raises(ValueError, match="not_a_field"):
        Preset.from_dict(data)


def test_get_preset():
    assert get_preset("tiny") is TINY
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_paper_preset_instantiates_on_meta_near_8b():
    with torch.device("meta"):
        model = CreatorModel(PAPER)
    n = model.creator_parameters()
    assert 0.9 * PAPER_CREATOR_PARAMS < n < 1.1 * PAPER_CREATOR_PARAMS
    assert model.audio_codec is None and model.video_vae is None  # loaded from their own dirs


def test_mismatched_preset_is_refused():
    bad = dataclasses.replace(TINY, creator=dataclasses.replace(TINY.creator, z_dim=8))
    with pytest.raises(ValueError, match="z_dim"):
        CreatorModel(bad)
