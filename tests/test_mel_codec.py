"""The tiny preset's audio tokenizer: log-mel + residual k-means VQ + Griffin-Lim."""

import itertools

import numpy as np
import pytest
import torch

from mavid.codecs.audio_tokenizer import AudioTokenizer, build_audio_tokenizer
from mavid.codecs.mel_codec import MelRVQCodec
from mavid.config import TINY, AudioTokenizerConfig
from mavid.data.speech import Voice, synthesize

SMALL = AudioTokenizerConfig(num_codebooks=4, codebook_size=32)


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    texts = ["The museum opens at nine.", "Tickets cost twelve euros.", "The cafe is upstairs."]
    return [synthesize(t, Voice("en-us+m3")).audio for t in texts]


def _log_spec_error(codec: MelRVQCodec, a: torch.Tensor, b: torch.Tensor) -> float:
    return float((codec.features(a[None]) - codec.features(b[None])).abs().mean())


def test_tiny_default_is_the_mel_codec():
    codec = build_audio_tokenizer(TINY.audio_tokenizer)
    assert isinstance(codec, MelRVQCodec) and isinstance(codec, AudioTokenizer)
    assert (codec.sample_rate, codec.frame_rate, codec.num_codebooks, codec.codebook_size) == (
        24_000,
        25,
        8,
        1024,
    )


def test_fit_is_deterministic_and_each_stage_refines(speech):
    a, b = MelRVQCodec(SMALL), MelRVQCodec(SMALL)
    errors = a.fit(speech, seed=3, progress=False)
    b.fit(speech, seed=3, progress=False)
    assert torch.equal(a.codebooks, b.codebooks)
    assert torch.equal(a.feature_mean, b.feature_mean)
    values = [errors[f"codebook_{k}"] for k in range(SMALL.num_codebooks)]
    assert all(x > y for x, y in itertools.pairwise(values)), values
    assert values[-1] < 0.5


def test_roundtrip_keeps_the_spectrum(speech):
    codec = MelRVQCodec(SMALL)
    codec.fit(speech, seed=0, progress=False)
    wave = torch.from_numpy(speech[0])
    codes = codec.encode(wave)
    n = wave.shape[0] // codec.hop_length
    assert codes.shape == (SMALL.num_codebooks, n) and codes.dtype == torch.int64
    out = codec.decode(codes)
    assert out.shape == (n * codec.hop_length,) and float(out.abs().max()) <= 1.0
    ref = wave[: out.shape[0]]
    # the reconstruction is far closer to the speech than random codes are
    noise = codec.decode(torch.randint(0, SMALL.codebook_size, codes.shape))
    assert _log_spec_error(codec, out, ref) < 0.6 * _log_spec_error(codec, noise, ref)
    # coarse-only (fine codebooks replaced by code 0 of each) is worse than all codebooks
    coarse = codes.clone()
    coarse[1:] = codec.encode(torch.zeros_like(wave))[1:, :1].expand(-1, n)
    assert _log_spec_error(codec, out, ref) < _log_spec_error(codec, codec.decode(coarse), ref)


def test_batched_and_state_dict_roundtrip(speech):
    codec = MelRVQCodec(SMALL)
    codec.fit(speech, seed=0, progress=False)
    waves = torch.stack([torch.from_numpy(s[: 960 * 10]) for s in speech])
    codes = codec.encode(waves)
    assert codes.shape == (3, SMALL.num_codebooks, 10)
    assert torch.equal(codes[1], codec.encode(waves[1]))
    assert torch.allclose(codec.decode(codes)[2], codec.decode(codes[2]), atol=1e-5)
    other = MelRVQCodec(SMALL)
    other.load_state_dict(codec.state_dict())
    assert torch.equal(other.encode(waves), codes)


def test_speech_is_synthesised_from_the_first_codebooks_alone(speech):
    codec = MelRVQCodec(SMALL)
    codec.fit(speech, seed=0, progress=False)
    wave = torch.from_numpy(speech[0])
    codes = codec.encode(wave)
    assert torch.equal(codec.decode(codes, levels=SMALL.num_codebooks), codec.decode(codes))
    # from the first codebook only, the finer codes change nothing ...
    scrambled = codes.clone()
    scrambled[1:] = torch.randint(0, SMALL.codebook_size, scrambled[1:].shape)
    coarse = codec.decode(codes, levels=1)
    assert torch.equal(codec.decode(scrambled, levels=1), coarse)
    assert not torch.equal(codec.decode(scrambled), codec.decode(codes))
    # ... and each further codebook brings the spectrum nearer the speech's
    ref = wave[: coarse.shape[0]]
    errors = [_log_spec_error(codec, codec.decode(codes, levels=n), ref) for n in (1, 2, 4)]
    assert errors[0] > errors[1] > errors[2], errors
    for bad in (0, SMALL.num_codebooks + 1, 1.5, True):
        with pytest.raises(ValueError, match="levels"):
            codec.decode(codes, levels=bad)


def _one_hot(codes: torch.Tensor, size: int) -> torch.Tensor:
    """(n, T) codes -> (n, T, size) probabilities, all on the code."""
    return torch.nn.functional.one_hot(codes, size).float()


def test_expected_speech_is_the_probability_weighted_mean_of_the_entries(speech):
    codec = MelRVQCodec(SMALL)
    codec.fit(speech, seed=0, progress=False)
    assert codec.expected_levels
    codes = codec.encode(torch.from_numpy(speech[1]))
    # all of the probability on the drawn codes: the drawn codes' speech
    for n in (1, 2, SMALL.num_codebooks):
        sure = codec.decode_expected(_one_hot(codes[:n], SMALL.codebook_size))
        assert torch.allclose(sure, codec.decode(codes, levels=n), atol=1e-4)
    # split between two codes: the mean of their entries
    other = (codes[:1] + 1) % SMALL.codebook_size
    half = (_one_hot(codes[:1], SMALL.codebook_size) + _one_hot(other, SMALL.codebook_size)) / 2
    mean = (codec.lookup(codes[None], 1) + codec.lookup(other.expand_as(codes)[None], 1)) / 2
    assert torch.allclose(codec.expected_lookup(half[None]), mean, atol=1e-5)
    assert not torch.allclose(codec.decode_expected(half), codec.decode(codes, levels=1))
    # batched as one at a time
    both = torch.stack([half, _one_hot(codes[:1], SMALL.codebook_size)])
    assert torch.allclose(codec.decode_expected(both)[0], codec.decode_expected(half), atol=1e-5)


@pytest.mark.parametrize(
    "probs, match",
    [
        (torch.full((4, 32), 1 / 32), "shape"),  # no codebook axis
        (torch.full((5, 4, 32), 1 / 32), "codebooks"),  # more codebooks than the codec has
        (torch.full((1, 4, 31), 1 / 31), "codes"),  # not the codebook's size
        (torch.full((1, 4, 32), 1 / 16), "sum to 1"),
        (torch.full((1, 4, 32), float("nan")), "finite"),
        (torch.eye(32)[:4][None] * 2 - torch.full((1, 4, 32), 1 / 32), "non-negative"),
    ],
)
def test_bad_code_probabilities_are_refused(probs, match):
    with pytest.raises(ValueError, match=match):
        MelRVQCodec(SMALL).decode_expected(probs)


def test_bad_input_is_refused():
    codec = MelRVQCodec(SMALL)
    with pytest.raises(ValueError, match="shorter than one frame"):
        codec.encode(torch.zeros(100))
    with pytest.raises(ValueError, match="codes must lie"):
        codec.decode(torch.full((4, 2), 32))
    with pytest.raises(ValueError, match="codebooks"):
        codec.decode(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no audio long enough"):
        codec.fit([np.zeros(10, np.float32)], progress=False)
    with pytest.raises(ValueError, match="multiple of subframes"):
        MelRVQCodec(AudioTokenizerConfig(subframes=7))
