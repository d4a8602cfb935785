"""Codecs: the multi-codebook audio tokenizer, the video VAE and the delay pattern."""

from mavid.codecs.audio_tokenizer import (
    AudioTokenizer,
    HiggsAudioTokenizer,
    MelRVQCodec,
    RVQAudioCodec,
    build_audio_tokenizer,
)
from mavid.codecs.delay_pattern import (
    build_delay_pattern,
    data_mask,
    revert_delay_pattern,
    unwrap_clip,
    wrap_clip,
)
from mavid.codecs.video_vae import TinyVideoVAE, VideoVAE, WanVideoVAE, build_video_vae

__all__ = [
    "AudioTokenizer",
    "HiggsAudioTokenizer",
    "MelRVQCodec",
    "RVQAudioCodec",
    "TinyVideoVAE",
    "VideoVAE",
    "WanVideoVAE",
    "build_audio_tokenizer",
    "build_delay_pattern",
    "build_video_vae",
    "data_mask",
    "revert_delay_pattern",
    "unwrap_clip",
    "wrap_clip",
]
