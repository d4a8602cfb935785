import dataclasses
import importlib.util

import pytest
import torch

from mavid.codecs.audio_tokenizer import (
    AudioTokenizer,
    HiggsAudioTokenizer,
    RVQAudioCodec,
    build_audio_tokenizer,
)
from mavid.config import MICRO, TINY, AudioTokenizerConfig


def test_tiny_codec_layout_and_shapes():
    torch.manual_seed(0)
    codec = RVQAudioCodec(TINY.audio_tokenizer).eval()
    assert isinstance(codec, AudioTokenizer)
    assert (codec.sample_rate, codec.frame_rate) == (24_000, 25)
    assert (codec.num_codebooks, codec.codebook_size) == (8, 1024)
    wave = torch.randn(24_000 + 500) * 0.1  # a partial last frame is dropped
    with torch.inference_mode():
        codes = codec.encode(wave)
        assert codes.shape == (8, 25) and codes.dtype == torch.int64
        assert 0 <= int(codes.min()) and int(codes.max()) < 1024
        out = codec.decode(codes)
    assert out.shape == (24_000,)
    assert out.abs().max() <= 1.0


def test_batched_encode_decode():
    codec = RVQAudioCodec(dataclasses.replace(MICRO.audio_tokenizer, kind="rvq_conv")).eval()
    with torch.inference_mode():
        codes = codec.encode(torch.randn(3, 960 * 4))
        assert codes.shape == (3, 4, 4)
        assert codec.decode(codes).shape == (3, 960 * 4)
        assert torch.allclose(codec.decode(codes[1]), codec.decode(codes)[1], atol=1e-5)


def test_decoding_from_the_first_codebooks_reads_no_finer_code():
    codec = RVQAudioCodec(dataclasses.replace(MICRO.audio_tokenizer, kind="rvq_conv")).eval()
    assert codec.partial_levels and not getattr(HiggsAudioTokenizer, "partial_levels", False)
    with torch.inference_mode():
        codes = codec.encode(torch.randn(960 * 4) * 0.1)
        scrambled = codes.clone()
        scrambled[2:] = (scrambled[2:] + 1) % codec.codebook_size
        assert torch.equal(codec.decode(codes, levels=2), codec.decode(scrambled, levels=2))
        assert not torch.equal(codec.decode(codes), codec.decode(scrambled))
        assert torch.equal(codec.decode(codes, levels=codec.num_codebooks), codec.decode(codes))
        with pytest.raises(ValueError, match="levels"):
            codec.decode(codes, levels=codec.num_codebooks + 1)


def test_expected_speech_with_all_probability_on_the_codes_is_their_speech():
    codec = RVQAudioCodec(dataclasses.replace(MICRO.audio_tokenizer, kind="rvq_conv")).eval()
    assert codec.expected_levels and not getattr(HiggsAudioTokenizer, "expected_levels", False)
    with torch.inference_mode():
        codes = codec.encode(torch.randn(960 * 4) * 0.1)
        sure = torch.nn.functional.one_hot(codes[:2], codec.codebook_size).float()
        assert torch.allclose(codec.decode_expected(sure), codec.decode(codes, levels=2), atol=1e-5)
        unsure = (sure + sure.roll(1, dims=-1)) / 2  # half on the next code
        assert not torch.allclose(codec.decode_expected(unsure), codec.decode(codes, levels=2))
        with pytest.raises(ValueError, match="sum to 1"):
            codec.decode_expected(sure * 2)


def test_bad_input_is_refused():
    codec = RVQAudioCodec(dataclasses.replace(MICRO.audio_tokenizer, kind="rvq_conv"))
    with pytest.raises(ValueError, match="shorter than one frame"):
        codec.encode(torch.zeros(100))
    with pytest.raises(ValueError, match="codes must lie"):
        codec.decode(torch.full((4, 2), 64))
    with pytest.raises(ValueError, match="codebooks"):
        codec.decode(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="one width per ratio"):
        RVQAudioCodec(AudioTokenizerConfig(channels=(4, 4)))
    with pytest.raises(ValueError, match="from a checkpoint"):
        build_audio_tokenizer(AudioTokenizerConfig(kind="higgs_v2"))


def test_reconstruction_loss_trains():
    torch.manual_seed(0)
    codec = RVQAudioCodec(dataclasses.replace(MICRO.audio_tokenizer, kind="rvq_conv"))
    t = torch.arange(960 * 4) / 24_000
    wave = (0.5 * torch.sin(2 * torch.pi * 220 * t))[None].repeat(2, 1)
    opt = torch.optim.Adam(codec.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        out = codec.reconstruction_loss(wave)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert set(out) == {"loss", "l1", "stft", "vq"}
    assert losses[-1] < losses[0]


def test_higgs_loader(tmp_path):
    with pytest.raises(FileNotFoundError, match="no higgs-audio v2 tokenizer"):
        HiggsAudioTokenizer.from_pretrained(tmp_path / "missing")
    from transformers import HiggsAudioV2TokenizerConfig

    cfg = HiggsAudioV2TokenizerConfig(
        acoustic_model_config=dict(
            encoder_hidden_size=8,
            decoder_hidden_size=16,
            hidden_size=16,
            downsampling_ratios=[8, 5, 4, 2, 3],
            upsampling_ratios=[8, 5, 4, 2, 3],
            hop_length=960,
            n_codebooks=9,  # the published checkpoint's DAC; encode() uses 8 of them
        ),
        semantic_model_config=dict(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            conv_dim=[16] * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        ),
        target_bandwidths=[0.5, 1, 1.5, 2],
        downsample_factor=320,  # the semantic branch's, as published: not the token rate
    )
    cfg.save_pretrained(tmp_path)
    # the rates come from the config alone: checked here even where torchaudio is missing
    shell = torch.nn.Module()
    shell.config = cfg
    tok = HiggsAudioTokenizer(shell)
    assert (tok.sample_rate, tok.frame_rate, tok.num_codebooks) == (24_000, 25, 8)
    if importlib.util.find_spec("torchaudio") is None:
        # transformers' module imports torchaudio; without it the loader must say so clearly
        with pytest.raises(ImportError, match="torchaudio"):
            HiggsAudioTokenizer.from_pretrained(tmp_path)
        return
    from transformers import HiggsAudioV2TokenizerModel

    HiggsAudioV2TokenizerModel(cfg).save_pretrained(tmp_path)
    tok = HiggsAudioTokenizer.from_pretrained(tmp_path)
    assert (tok.sample_rate, tok.frame_rate, tok.num_codebooks) == (24_000, 25, 8)
    codes = tok.encode(torch.randn(24_000) * 0.1)
    assert codes.shape[0] == 8
    assert tok.decode(codes).ndim == 1
