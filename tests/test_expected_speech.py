"""Speech synthesised from the expected codebook entries (`CreatorConfig.expected_speech`)."""

import numpy as np
import pytest
import torch
from conftest import paired_streams, with_settings

from mavid.codecs.delay_pattern import unwrap_clip
from mavid.config import MICRO
from mavid.creator.audio_decoder import SamplingConfig
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator
from mavid.creator.text import encode_text

K = MICRO.creator.num_codebooks


@pytest.fixture(scope="module")
def model() -> CreatorModel:
    return CreatorModel.random(MICRO, 0)


def _generate(model, levels, temperature=1.0, seed=0, phones=None, guidance=1.0):
    text = torch.tensor([encode_text("hello there", MICRO.creator.max_text_len)])
    return model.audio.generate(
        text, None, 9, None, SamplingConfig(temperature, 0, 1.0),
        torch.Generator().manual_seed(seed), phones=phones, phone_guidance=guidance,
        expected_levels=levels,
    )  # fmt: skip


@torch.inference_mode()
def test_the_probabilities_are_those_each_frames_codes_were_drawn_from(model):
    phones = torch.randint(1, 50, (1, 9, 2)) % torch.tensor([50, 8])
    for guidance in (1.0, 3.0):
        greedy = _generate(model, K, temperature=0.0, phones=phones, guidance=guidance)
        probs = greedy.probs
        assert probs.shape == (1, K, 9, MICRO.creator.codebook_size)
        assert torch.allclose(probs.sum(-1), torch.ones(1, K, 9), atol=1e-5)
        # greedy draws the likeliest code: frame t of codebook j at its own delayed step
        assert torch.equal(probs.argmax(-1)[0], unwrap_clip(greedy.cols[0]))
    # asked for fewer codebooks: the first ones, the same probabilities; the draws unchanged
    two = _generate(model, 2, temperature=0.0, phones=phones, guidance=3.0)
    assert torch.allclose(two.probs, probs[:, :2]) and torch.equal(two.cols, greedy.cols)
    none = _generate(model, 0)
    assert none.probs is None and torch.equal(none.cols, _generate(model, K).cols)
    for bad in (-1, K + 1, True):
        with pytest.raises(ValueError, match="expected_levels"):
            _generate(model, bad)


def test_expected_speech_changes_only_the_audio(model):
    drawn, expected = paired_streams(model, expected_speech=True)
    for text in ("hello there", "how are you", "and goodbye"):  # seams read the last probabilities
        a, b = drawn.next_clip(text, ""), expected.next_clip(text, "")
        assert np.array_equal(a.frames, b.frames)  # the same codes, the same face
        assert a.audio.shape == b.audio.shape and not np.array_equal(a.audio, b.audio)
        assert np.isfinite(b.audio).all() and np.abs(b.audio).max() > 0
    assert expected.history.audio_probs.shape == (1, K, 4, MICRO.creator.codebook_size)
    # from the first codebook only: another spectrum again
    every, coarse = paired_streams(with_settings(model, expected_speech=True), speech_codebooks=1)
    one = coarse.next_clip("hello there", "")
    assert not np.array_equal(one.audio, every.next_clip("hello there", "").audio)


def test_expected_speech_is_refused_where_the_codec_cannot_make_it(model):
    with pytest.raises(ValueError, match="expected_speech"):
        MavidCreator(CreatorModel(MICRO.replace_creator(expected_speech="yes")))
    drawn_only = type("DrawnOnly", (type(model.audio_codec),), {"expected_levels": False})
    codec = drawn_only(model.audio_codec.config)
    codec.load_state_dict(model.audio_codec.state_dict())
    MavidCreator(model, audio_codec=codec)  # drawn codes: fine
    with pytest.raises(ValueError, match="decodes drawn codes only"):
        MavidCreator(with_settings(model, expected_speech=True), audio_codec=codec)
