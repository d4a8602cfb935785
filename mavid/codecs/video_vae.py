"""Video VAEs behind one interface: Wan's `AutoencoderKLWan` and the tiny preset's fast VAE.

Both map a clip of 1 + 4k frames to 1 + k latent frames (4x temporal, 8x spatial): latent 0 is
frame 0 alone, latent i >= 1 covers frames 4i-3 .. 4i.

Why the tiny preset has its own: diffusers' `AutoencoderKLWan` decodes frame by frame with causal
3-D convolutions and takes > 1.4 s per 25 frames at 128x128 on 2 CPU cores whatever its width
(DESIGN.md, measured), 4x the whole clip budget. `TinyVideoVAE` decodes each latent with 2-D
convolutions into its 4 frames at once (~20 ms per 1-s clip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from mavid.config import VideoVAEConfig


@runtime_checkable
class VideoVAE(Protocol):
    z_dim: int
    temporal_compression: int
    spatial_compression: int

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1 + 4k, H, W) float in [-1, 1] -> (B, z, 1 + k, H / 8, W / 8) latents."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, z, 1 + k, h, w) latents -> (B, 3, 1 + 4k, 8h, 8w) float in [-1, 1]."""
        ...


def num_latents(num_frames: int, temporal_compression: int = 4) -> int:
    if num_frames < 1 or (num_frames - 1) % temporal_compression:
        raise ValueError(f"a clip needs 1 + {temporal_compression}k frames, got {num_frames}")
    return 1 + (num_frames - 1) // temporal_compression


class TinyVideoVAE(nn.Module):
    """Per-latent 2-D conv autoencoder; each latent predicts its 4 frames (latent 0: frame 0)."""

    def __init__(self, config: VideoVAEConfig) -> None:
        super().__init__()
        if config.spatial_compression != 2 ** (len(config.channels) - 1):
            raise ValueError("VideoVAEConfig.channels needs log2(spatial_compression) + 1 widths")
        self.config = config
        self.z_dim = config.z_dim
        self.temporal_compression = tc = config.temporal_compression
        self.spatial_compression = config.spatial_compression
        ch = list(config.channels)  # widest first: 1/8 resolution ... full resolution
        enc: list[nn.Module] = [nn.Conv2d(3 * tc, ch[-1], 3, padding=1)]
        for i in range(len(ch) - 1, 0, -1):
            enc += [nn.SiLU(), nn.Conv2d(ch[i], ch[i - 1], 4, stride=2, padding=1)]
        enc += [nn.SiLU(), nn.Conv2d(ch[0], config.z_dim, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(config.z_dim, ch[0], 3, padding=1)]
        for i in range(len(ch) - 1):
            # conv at the low resolution then pixel shuffle: same FLOPs as upsample + conv,
            # without the (slow on CPU) nearest upsampling pass
            dec += [nn.SiLU(), nn.Conv2d(ch[i], 4 * ch[i + 1], 3, padding=1), nn.PixelShuffle(2)]
        dec += [nn.SiLU(), nn.Conv2d(ch[-1], 3 * tc, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = video.shape
        t = num_latents(f, self.temporal_compression)
        tc = self.temporal_compression
        # frame 0 repeated to a full group, like Wan's causal padding
        padded = torch.cat([video[:, :, :1].expand(-1, -1, tc - 1, -1, -1), video], dim=2)
        groups = padded.reshape(b, c, t, tc, h, w).permute(0, 2, 3, 1, 4, 5)  # (B, T, 4, 3, H, W)
        z = self.encoder(groups.reshape(b * t, tc * c, h, w))  # (B*T, z, h, w)
        z = z / self.config.latent_scale
        return z.reshape(b, t, self.z_dim, *z.shape[-2:]).transpose(1, 2)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, z, t, h, w = latents.shape
        tc = self.temporal_compression
        x = latents.transpose(1, 2).reshape(b * t, z, h, w) * self.config.latent_scale
        frames = torch.tanh(self.decoder(x))  # (B*T, 4*3, H, W)
        hh, ww = frames.shape[-2:]
        frames = frames.reshape(b, t, tc, 3, hh, ww)
        # latent 0 -> frame 0 only (its last predicted frame: the one without causal padding)
        first = frames[:, :1, -1:]
        rest = frames[:, 1:].reshape(b, (t - 1) * tc, 3, hh, ww)
        video = torch.cat([first.reshape(b, 1, 3, hh, ww), rest], dim=1)  # (B, F, 3, H, W)
        return video.transpose(1, 2)

    def reconstruction_loss(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on (B, 3, 1 + 4k, H, W) clips in [-1, 1]: L1, L1 of the spatial
        gradients (edges: L1 alone settles for blur, and the lips are a few edges), and a small
        latent L2."""
        z = self.encode(video)
        recon = self.decode(z)
        l1 = F.l1_loss(recon, video)
        edges = sum(F.l1_loss(recon.diff(dim=d), video.diff(dim=d)) for d in (-1, -2))
        reg = 1e-4 * (z * self.config.latent_scale).pow(2).mean()
        return {"loss": l1 + edges + reg, "l1": l1, "edges": edges, "latent_l2": reg}


class WanVideoVAE:
    """diffusers' `AutoencoderKLWan` (Wan 2.1 / 2.2) with its latent normalisation."""

    def __init__(self, model: nn.Module) -> None:
        cfg = model.config
        self.model = model.eval()
        self.z_dim = int(cfg.z_dim)
        self.temporal_compression = int(cfg.scale_factor_temporal or 4)
        self.spatial_compression = int(cfg.scale_factor_spatial or 8)
        self._mean = torch.tensor(cfg.latents_mean).view(1, -1, 1, 1, 1)
        self._std = torch.tensor(cfg.latents_std).view(1, -1, 1, 1, 1)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> WanVideoVAE:
        from diffusers import AutoencoderKLWan

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no AutoencoderKLWan checkpoint at {path}")
        return cls(AutoencoderKLWan.from_pretrained(path, local_files_only=True).to(device))

    @torch.inference_mode()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        num_latents(video.shape[2], self.temporal_compression)
        z = self.model.encode(video).latent_dist.mode()
        return (z - self._mean.to(z)) / self._std.to(z)

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = latents * self._std.to(latents) + self._mean.to(latents)
        return self.model.decode(z).sample.clamp(-1, 1)


def build_video_vae(config: VideoVAEConfig) -> TinyVideoVAE:
    """The trainable VAE of a preset (the Wan kind loads only from a checkpoint)."""
    if config.kind != "tiny_conv":
        raise ValueError(
            f"video VAE kind {config.kind!r} loads from a checkpoint: "
            "WanVideoVAE.from_pretrained(local_dir)"
        )
    return TinyVideoVAE(config)
