"""The MAViD Creator as one module: AR audio decoder + DiT video blocks + motion text encoder,
coupled per layer by the fusion module, with the preset's codecs when they are ours to train.
"""

from __future__ import annotations

import torch
from torch import nn

from mavid.codecs.audio_tokenizer import RVQAudioCodec, build_audio_tokenizer
from mavid.codecs.mel_codec import MelRVQCodec
from mavid.codecs.video_vae import TinyVideoVAE, build_video_vae
from mavid.config import Preset
from mavid.creator.audio_decoder import KV, AudioDecoder
from mavid.creator.dit import VideoDiT, VideoPrefix
from mavid.creator.fusion import fa_windows, fv_select
from mavid.creator.text import MotionEncoder, batch_text


class CreatorModel(nn.Module):
    def __init__(self, preset: Preset) -> None:
        super().__init__()
        self.preset = preset
        cfg = preset.creator
        if cfg.z_dim != preset.video_vae.z_dim:
            raise ValueError(f"creator z_dim {cfg.z_dim} != VAE z_dim {preset.video_vae.z_dim}")
        if cfg.num_codebooks != preset.media.num_codebooks:
            raise ValueError("creator and media disagree on the number of codebooks")
        self.audio = AudioDecoder(cfg)
        self.video = VideoDiT(cfg)
        self.motion = MotionEncoder(
            cfg.video_dim,
            cfg.video_heads,
            cfg.video_ffn,
            cfg.motion_encoder_layers,
            cfg.max_text_len,
            cfg.eps,
        )
        # Codecs of our own kinds live inside the model (one checkpoint for tiny); real Higgs /
        # Wan codecs are loaded from their own directories and passed to MavidCreator.
        self.audio_codec: RVQAudioCodec | MelRVQCodec | None = (
            build_audio_tokenizer(preset.audio_tokenizer)
            if preset.audio_tokenizer.kind in ("mel_rvq", "rvq_conv")
            else None
        )
        self.video_vae: TinyVideoVAE | None = (
            build_video_vae(preset.video_vae) if preset.video_vae.kind == "tiny_conv" else None
        )

    @classmethod
    def random(cls, preset: Preset, seed: int = 0) -> CreatorModel:
        """Deterministic random weights from `seed`; the global RNG is left untouched."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(preset).eval()

    @property
    def cfg(self):
        return self.preset.creator

    def creator_parameters(self) -> int:
        """Parameters of the speech + video generator (codecs excluded), as the paper counts."""
        parts = (self.audio, self.video, self.motion)
        return sum(p.numel() for m in parts for p in m.parameters())

    def motion_kv(self, texts: list[str], device: torch.device | str = "cpu") -> list[tuple]:
        """T_motion keys/values for every video layer's text CA, once per clip."""
        ids, mask = batch_text(texts, self.cfg.max_text_len)
        ids, mask = ids.to(device), mask.to(device)
        t_motion = self.motion(ids, mask)  # (B, Lm, Dv)
        attn_mask = None if bool(mask.all()) else mask[:, None, None, :]
        return [(*block.text_attn.project_kv(t_motion), attn_mask) for block in self.video.blocks]

    def video_history(
        self,
        prev_latents: torch.Tensor | None,
        reference: torch.Tensor | None = None,
        prev_t: torch.Tensor | None = None,
    ) -> tuple[VideoPrefix | None, list[KV] | None]:
        """v_{j-1} (and the reference latent, in presets with `reference_anchor`) -> the DiT's
        SA prefix, and F_v keys/values for the audio (Eq. 6; None without v_{j-1}).

        The reference is ignored unless the preset anchors to it; `prev_t` (B, T_prev) marks
        noised history (training only)."""
        if not self.cfg.reference_anchor:
            reference = None
        if prev_latents is None and reference is None:
            return None, None
        prefix = self.video.encode_prefix(prev_latents, reference, prev_t)
        if not self.cfg.fusion or prev_latents is None:
            return prefix, None
        fv_kv = []
        for block, stream in zip(self.audio.blocks, prefix.streams, strict=True):
            fv = fv_select(stream, prefix.history_latents, self.cfg.fv_latents)
            fv_kv.append(block.fuse_video.context(fv))
        return prefix, fv_kv

    def audio_context(self, sources: list[torch.Tensor], num_latents: int) -> list | None:
        """F_a(a_j): per-layer, per-latent audio keys/values for the video CA (Eq. 7)."""
        if not self.cfg.fusion:
            return None
        num_frames = sources[0].shape[1]
        idx, valid = fa_windows(
            num_latents, num_frames, self.cfg.fa_tokens, self.preset.media.temporal_compression
        )
        return [
            block.fuse_audio.context(src, idx.to(src.device), valid)
            for block, src in zip(self.video.blocks, sources, strict=True)
        ]
