"""Training of the tiny preset's own codecs on the world: the audio tokenizer and the video VAE.

The mel-RVQ audio codec (the tiny default) is fitted once by k-means when the task is built
(deterministic from the seed, a minute); the video VAE then trains by gradient steps. A learned
waveform codec (`rvq_conv`) trains beside the VAE with its reconstruction loss instead.

They live inside a `CreatorModel` (its `audio_codec` / `video_vae`), so the run ends with a
Creator checkpoint (mavid/checkpoint.py format) whose codecs are trained and whose generator
is still random: the `init` of stage 2.

Given an `init` model (a codecs run's `model/`), the task takes its audio tokenizer as it is and
trains only a fresh video VAE: stage 2 can then start from that init beside the VAE's training
(it needs only the tokenizer), and stage 3 takes the VAE from here with the same tokenizer by
construction. When training ends (`finish`), the VAE's `latent_scale` is set to the standard
deviation of its latents on the world, so the DiT sees unit-variance latents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from mavid.codecs.mel_codec import MelRVQCodec
from mavid.config import Preset
from mavid.creator.model import CreatorModel
from mavid.data.dialogue import DialogueSample
from mavid.train.data import check_media, nonempty, step_rng
from mavid.train.loop import optimizer_step


@dataclass
class MediaTrack:
    """The answer media of one sample, kept compact: clean speech and uint8 frames."""

    audio: np.ndarray  # (N,) float32, N = frames * hop
    frames: np.ndarray  # (F, H, W, 3) uint8


@dataclass
class CodecBatch:
    audio: torch.Tensor  # (B, crop_frames * hop) float32
    video: torch.Tensor  # (B, 3, clip_frames, H, W) float32 in [-1, 1]


def media_tracks(samples: Iterable[DialogueSample], preset: Preset) -> list[MediaTrack]:
    """The codecs learn the clean speech (the Creator's target), not the ambience under it."""
    out = []
    for s in samples:
        check_media(s, preset.media)
        out.append(MediaTrack(s.speech_audio.astype(np.float32), s.frames))
    return nonempty(out, "samples with media")


class CodecsTask:
    """Random crops: `crop_frames` token frames of audio and one clip of `clip_frames` frames
    of video per batch item, from samples and offsets drawn from (seed, step)."""

    def __init__(
        self,
        tracks: list[MediaTrack],
        preset: Preset,
        batch_size: int,
        seed: int,
        audio_codec_from: CreatorModel | None = None,
        crop: int | None = None,
    ) -> None:
        """`audio_codec_from`: take this model's audio tokenizer (fitted, or trained) instead
        of making one; only the video VAE trains then. `crop`: the VAE trains on random
        `crop` x `crop` windows of the frames (on a grid of the VAE's spatial step)."""
        self.tracks = nonempty(tracks, "media tracks")
        self.preset, self.batch_size, self.seed = preset, batch_size, seed
        self.model = CreatorModel.random(preset, seed)
        if self.model.audio_codec is None or self.model.video_vae is None:
            raise ValueError(f"preset {preset.name!r} has no codecs of ours to train")
        self.hop = self.model.audio_codec.hop_length
        self.fit_errors: dict[str, float] = {}
        self.audio_frozen = audio_codec_from is not None
        if audio_codec_from is not None:
            self.model.audio_codec.load_state_dict(audio_codec_from.audio_codec.state_dict())
        elif isinstance(self.model.audio_codec, MelRVQCodec):
            self.fit_errors = self.model.audio_codec.fit((t.audio for t in self.tracks), seed)
        self.clip_frames = preset.media.clip_frames
        media = preset.media
        if crop is not None and (
            crop % media.spatial_compression or crop > min(media.height, media.width)
        ):
            raise ValueError(
                f"crop {crop} must be a multiple of {media.spatial_compression} within the frame"
            )
        self.crop = crop
        shortest = min(t.frames.shape[0] for t in self.tracks)
        if shortest < self.clip_frames:
            raise ValueError(f"a sample has {shortest} frames, shorter than one clip")

    @property
    def learned_audio(self) -> bool:
        """The audio codec trains here (a learned kind, not taken from an init)."""
        return not self.audio_frozen and not isinstance(self.model.audio_codec, MelRVQCodec)

    def trainable(self) -> list[torch.nn.Parameter]:
        audio = list(self.model.audio_codec.parameters()) if self.learned_audio else []
        return [*audio, *self.model.video_vae.parameters()]

    def batch(self, step: int) -> CodecBatch:
        rng = step_rng(self.seed, step)
        audio, video = [], []
        n, hop = self.clip_frames, self.hop
        for _ in range(self.batch_size):
            t = self.tracks[int(rng.integers(len(self.tracks)))]
            a0 = int(rng.integers(t.audio.shape[0] // hop - n + 1))  # token-frame aligned
            audio.append(torch.from_numpy(t.audio[a0 * hop : (a0 + n) * hop]))
            t = self.tracks[int(rng.integers(len(self.tracks)))]
            f0 = int(rng.integers(t.frames.shape[0] - n + 1))
            clip = t.frames[f0 : f0 + n]
            if self.crop is not None:
                step = self.preset.media.spatial_compression
                y, x = (
                    step * int(rng.integers((size - self.crop) // step + 1))
                    for size in clip.shape[1:3]
                )
                clip = clip[:, y : y + self.crop, x : x + self.crop]
            video.append(torch.from_numpy(np.ascontiguousarray(clip)))
        frames = torch.stack(video).permute(0, 4, 1, 2, 3).float()  # (B, 3, F, H, W)
        return CodecBatch(torch.stack(audio), frames / 127.5 - 1.0)

    def train_step(
        self, batch: CodecBatch, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        codec, vae = self.model.audio_codec, self.model.video_vae
        vae.train()
        device = next(vae.parameters()).device
        batch = CodecBatch(batch.audio.to(device), batch.video.to(device))
        v = vae.reconstruction_loss(batch.video)
        loss = v["loss"]
        logged = {"video_l1": float(v["l1"].detach()), "video_edges": float(v["edges"].detach())}
        if self.learned_audio:
            codec.train()
            a = codec.reconstruction_loss(batch.audio)
            loss = loss + a["loss"]
            logged |= {f"audio_{k}": float(a[k].detach()) for k in ("l1", "stft", "vq")}
        else:
            # the fitted codec's relative quantisation error, constant: kept in the log
            logged["audio_vq_error"] = self.fit_errors.get(
                f"codebook_{codec.num_codebooks - 1}", 0.0
            )
        norm = optimizer_step(optimizer, loss, self.trainable(), max_grad_norm)
        return {"loss": float(loss.detach()), **logged, "grad_norm": norm}

    @torch.inference_mode()
    def finish(self, batches: int = 8) -> float:
        """Set the VAE's `latent_scale` (in the model's preset too, so checkpoints keep it) to
        the standard deviation of its unscaled latents on the first `batches` batches."""
        vae = self.model.video_vae
        vae.eval()
        device = next(vae.parameters()).device
        raw = [
            vae.encode(self.batch(step).video.to(device)) * vae.config.latent_scale
            for step in range(batches)
        ]
        scale = float(torch.cat([z.flatten() for z in raw]).std())
        vae.config = dataclasses.replace(vae.config, latent_scale=scale)
        self.model.preset = dataclasses.replace(self.model.preset, video_vae=vae.config)
        return scale
