"""DiT video blocks (Wan design: AdaLN-modulated SA, text CA, FFN, 3-D RoPE, q/k RMSNorm).

One layer for video clip j (Eq. 7): SA over [v_{j-1} ∘ v_j] -> CA to T_motion -> CA to F_a(a_j)
-> FFN. v_{j-1} is the clean previous clip: its tokens pass the same blocks once per clip at
t = 0 with SA among themselves only (they never see clip j), and each layer keeps their keys and
values (the SA prefix of clip j) and their SA stream (F_v's source for the audio, Eq. 6). The
cross-attentions apply to clip j's tokens only. Timesteps are per latent, so a latent fixed to the
reference image is marked clean (t = 0) while the rest are noisy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mavid.config import CreatorConfig
from mavid.creator.fusion import VideoFromAudio
from mavid.creator.layers import Attention, FeedForward, apply_rope, rope_3d, timestep_embedding

KV = tuple[torch.Tensor, torch.Tensor]


@dataclass
class VideoPrefix:
    """What layer l of clip j needs from the clean latents before it: SA keys/values of all of
    them (the reference latent, if anchored, then v_{j-1}) and the SA stream of v_{j-1} alone."""

    kv: list[KV]  # per layer: (B, H, T_prefix*P, hd) each
    streams: list[torch.Tensor]  # per layer: (B, T_prev*P, Dv); T_prev = 0 without v_{j-1}
    num_latents: int  # T_prefix: reference + previous clip; clip j's RoPE time starts here
    history_latents: int  # T_prev: latents of v_{j-1} (F_v's source)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x (B, T*P, D) with per-latent shift/scale (B, T, D)."""
    b, n, d = x.shape
    t = shift.shape[1]
    y = x.view(b, t, n // t, d) * (1 + scale[:, :, None]) + shift[:, :, None]
    return y.view(b, n, d)


def gated(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    b, n, d = x.shape
    t = gate.shape[1]
    return (x.view(b, t, n // t, d) * gate[:, :, None]).view(b, n, d)


class VideoBlock(nn.Module):
    def __init__(self, cfg: CreatorConfig) -> None:
        super().__init__()
        d = cfg.video_dim
        self.norm1 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.attn = Attention(d, cfg.video_heads, eps=cfg.eps)
        self.norm_text = nn.LayerNorm(d, eps=cfg.eps)
        self.text_attn = Attention(d, cfg.video_heads, eps=cfg.eps)
        self.fuse_audio = (
            VideoFromAudio(d, cfg.audio_dim, cfg.video_heads, cfg.eps) if cfg.fusion else None
        )
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = FeedForward(d, cfg.video_ffn)
        self.scale_shift_table = nn.Parameter(torch.randn(1, 1, 6, d) / d**0.5)

    def mods(self, temb6: torch.Tensor) -> list[torch.Tensor]:
        """(B, T, 6, D) timestep projection -> 6 tensors (B, T, D)."""
        return list((self.scale_shift_table + temb6).unbind(2))

    def prefix(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        temb6: torch.Tensor,
        last: bool = False,
    ) -> tuple[torch.Tensor, KV, torch.Tensor]:
        """The clean previous clip: SA among itself, FFN; returns (x, its kv, SA stream).

        The last layer's FFN output would feed no one, so `last` skips it.
        """
        shift, scale, gate, c_shift, c_scale, c_gate = self.mods(temb6)
        h = modulate(self.norm1(x), shift, scale)
        q = apply_rope(self.attn.project_q(h), cos, sin)
        k, v = self.attn.project_kv(h)
        k = apply_rope(k, cos, sin)
        x = x + gated(self.attn.attend(q, k, v), gate)
        stream = x
        if not last:
            x = x + gated(self.ffn(modulate(self.norm3(x), c_shift, c_scale)), c_gate)
        return x, (k, v), stream

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        temb6: torch.Tensor,
        prefix_kv: KV | None,
        text_kv: tuple,
        audio_ctx: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip j's tokens x (B, T*P, D) -> (x, SA stream)."""
        shift, scale, gate, c_shift, c_scale, c_gate = self.mods(temb6)
        h = modulate(self.norm1(x), shift, scale)
        q = apply_rope(self.attn.project_q(h), cos, sin)
        k, v = self.attn.project_kv(h)
        k = apply_rope(k, cos, sin)
        if prefix_kv is not None:  # SA over [v_{j-1} ∘ v_j]
            k = torch.cat([prefix_kv[0].expand(k.shape[0], -1, -1, -1), k], dim=2)
            v = torch.cat([prefix_kv[1].expand(v.shape[0], -1, -1, -1), v], dim=2)
        x = x + gated(self.attn.attend(q, k, v), gate)
        stream = x
        k_t, v_t, m_t = text_kv  # T_motion keys/values (B, H, Lm, hd), padding mask or None
        x = x + self.text_attn.attend(self.text_attn.project_q(self.norm_text(x)), k_t, v_t, m_t)
        if self.fuse_audio is not None and audio_ctx is not None:
            x = x + self.fuse_audio(x, audio_ctx, temb6.shape[1])
        x = x + gated(self.ffn(modulate(self.norm3(x), c_shift, c_scale)), c_gate)
        return x, stream


class VideoDiT(nn.Module):
    """Patchify -> VideoBlocks -> AdaLN head predicting the flow-matching velocity."""

    def __init__(self, cfg: CreatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, p = cfg.video_dim, cfg.patch_size
        self.patch_embed = nn.Linear(cfg.z_dim * p * p, d)
        self.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.time_proj = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(VideoBlock(cfg) for _ in range(cfg.num_layers))
        self.norm_out = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=False)
        self.head_table = nn.Parameter(torch.randn(1, 1, 2, d) / d**0.5)
        self.head = nn.Linear(d, cfg.z_dim * p * p)

    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C, T, h, w) -> (B, T*(h/p)*(w/p), C*p*p), tokens ordered latent by latent."""
        b, c, t, h, w = z.shape
        p = self.cfg.patch_size
        z = z.view(b, c, t, h // p, p, w // p, p).permute(0, 2, 3, 5, 1, 4, 6)
        return z.reshape(b, t * (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: torch.Tensor, t: int, h: int, w: int) -> torch.Tensor:
        b = x.shape[0]
        p, c = self.cfg.patch_size, self.cfg.z_dim
        x = x.view(b, t, h // p, w // p, c, p, p).permute(0, 4, 1, 2, 5, 3, 6)
        return x.reshape(b, c, t, h, w)

    def temb(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-latent times (B, T) -> embedding (B, T, D) and block projection (B, T, 6, D)."""
        e = self.time_embed(timestep_embedding(t, self.cfg.video_dim).to(t.dtype))
        return e, self.time_proj(e).unflatten(-1, (6, self.cfg.video_dim))

    def rope(self, t: int, h: int, w: int, t_offset: int, like: torch.Tensor):
        p = self.cfg.patch_size
        angles = rope_3d(t, h // p, w // p, self.cfg.video_dim // self.cfg.video_heads, t_offset)
        return angles.cos().to(like), angles.sin().to(like)

    def encode_prefix(
        self,
        prev: torch.Tensor | None,
        reference: torch.Tensor | None = None,
        prev_t: torch.Tensor | None = None,
    ) -> VideoPrefix:
        """Latents before clip j -> per-layer SA kv and the SA streams of v_{j-1}.

        `reference` (B, C, 1, h, w): the reference image's latent, placed first (RoPE time 0);
        `prev` (B, C, T, h, w): v_{j-1}, clean, or noised to times `prev_t` (B, T) in training
        (history noise augmentation). Either may be None, not both.
        """
        parts = [z for z in (reference, prev) if z is not None]
        if not parts:
            raise ValueError("a prefix needs the previous clip, the reference latent, or both")
        z = torch.cat(parts, dim=2)
        b, _, t, h, w = z.shape
        n_ref = 0 if reference is None else reference.shape[2]
        times = torch.zeros(b, t, device=z.device, dtype=z.dtype)
        if prev_t is not None:
            times[:, n_ref:] = prev_t
        x = self.patch_embed(self.patchify(z))
        cos, sin = self.rope(t, h, w, 0, x)
        _, temb6 = self.temb(times)
        per_latent = x.shape[1] // t
        kvs, streams = [], []
        for i, block in enumerate(self.blocks):
            x, kv, stream = block.prefix(x, cos, sin, temb6, last=i == len(self.blocks) - 1)
            kvs.append(kv)
            streams.append(stream[:, n_ref * per_latent :])
        return VideoPrefix(kv=kvs, streams=streams, num_latents=t, history_latents=t - n_ref)

    def forward(
        self,
        z: torch.Tensor,
        t: torch.Tensor,
        prefix: VideoPrefix | None,
        text_kv: list[tuple],
        audio_ctx: list | None,
    ) -> torch.Tensor:
        """Noisy latents z (B, C, T, h, w), per-latent times t (B, T) -> velocity like z."""
        _, _, nt, h, w = z.shape
        x = self.patch_embed(self.patchify(z))  # (B, T*P, D)
        offset = prefix.num_latents if prefix is not None else 0
        cos, sin = self.rope(nt, h, w, offset, x)
        e, temb6 = self.temb(t)
        for i, block in enumerate(self.blocks):
            x, _ = block(
                x,
                cos,
                sin,
                temb6,
                prefix.kv[i] if prefix is not None else None,
                text_kv[i],
                audio_ctx[i] if audio_ctx is not None else None,
            )
        shift, scale = (self.head_table + e[:, :, None]).unbind(2)
        x = self.head(modulate(self.norm_out(x), shift, scale))
        return self.unpatchify(x, nt, h, w)
