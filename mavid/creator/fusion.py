"""The fusion module (Eq. 6 / Eq. 7): the two cross-modal cross-attentions and F_a / F_v.

Eq. 6, audio clip j:  â_j = CA( SA([T_speech ∘ a_{j-1} ∘ a_j]), F_v(SA(v_{j-1})) )
Eq. 7, video clip j:  v̂_j = CA( CA( SA([v_{j-1} ∘ v_j]), T_motion ), F_a(a_j) )

Per layer l, "SA(x)" is the residual stream right after layer l's self-attention. Time mapping
(see mavid/config.py): F_v keeps the last `fv_latents` latents of the clean previous clip (all of
them when it has fewer); F_a gives video latent i the first `fa_tokens` audio token frames of its
own window, an audio token frame f being the AR hidden state at delayed column f + K.
"""

from __future__ import annotations

import torch
from torch import nn

from mavid.creator.layers import Attention


def latent_window(i: int, temporal_compression: int) -> tuple[int, int]:
    """Video frames [start, end) covered by latent i (latent 0: frame 0; then 4 frames each)."""
    if i == 0:
        return 0, 1
    return temporal_compression * (i - 1) + 1, temporal_compression * i + 1


def fa_windows(
    num_latents: int, num_frames: int, fa_tokens: int, temporal_compression: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """F_a's audio token frames per latent -> (T_lat, fa_tokens) indices and validity mask.

    Audio runs at one token frame per video frame, so latent i's window in audio token frames
    equals its window in video frames; it keeps the first `fa_tokens` of them.
    """
    idx = torch.zeros(num_latents, fa_tokens, dtype=torch.long)
    valid = torch.zeros(num_latents, fa_tokens, dtype=torch.bool)
    for i in range(num_latents):
        start, end = latent_window(i, temporal_compression)
        end = min(end, start + fa_tokens, num_frames)
        n = end - start
        idx[i, :n] = torch.arange(start, end)
        valid[i, :n] = True
    return idx, valid


def audio_frame_columns(num_frames: int, num_codebooks: int) -> torch.Tensor:
    """Delayed column whose AR hidden state stands for audio frame f: f + K (all K codes read)."""
    return torch.arange(num_frames) + num_codebooks


def fv_select(prev_tokens: torch.Tensor, prev_latents: int, fv_latents: int) -> torch.Tensor:
    """F_v: (B, T_prev * P, D) tokens of the previous clip -> its last min(10, T_prev) latents."""
    per_latent = prev_tokens.shape[1] // prev_latents
    keep = min(fv_latents, prev_latents)
    return prev_tokens[:, (prev_latents - keep) * per_latent :]


class AudioFromVideo(nn.Module):
    """Eq. 6's CA: audio positions attend to F_v(SA(v_{j-1})) of the same layer."""

    def __init__(self, audio_dim: int, video_dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(audio_dim, eps=eps)
        self.attn = Attention(audio_dim, heads, kv_dim=video_dim, eps=eps, qk_norm=False)

    def context(self, fv_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values of F_v tokens (B, M, Dv), computed once per clip."""
        return self.attn.project_kv(fv_tokens)

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q = self.attn.project_q(self.norm(x))
        return self.attn.attend(q, *kv)  # (B, L, Da)


class VideoFromAudio(nn.Module):
    """Eq. 7's last CA: each video latent's tokens attend only to F_a(a_j) of its window."""

    def __init__(self, video_dim: int, audio_dim: int, heads: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(video_dim, eps=eps)
        self.attn = Attention(video_dim, heads, kv_dim=audio_dim, eps=eps)

    def context(
        self, audio_frames: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio_frames (B, F, Da) -> per-latent keys/values (B*T, H, fa, hd) and mask."""
        k, v = self.attn.project_kv(audio_frames)  # (B, H, F, hd)
        b, h, _, hd = k.shape
        t, n = idx.shape
        k = k[:, :, idx.reshape(-1)].view(b, h, t, n, hd).transpose(1, 2).reshape(b * t, h, n, hd)
        v = v[:, :, idx.reshape(-1)].view(b, h, t, n, hd).transpose(1, 2).reshape(b * t, h, n, hd)
        mask = (
            valid.to(k.device)[None, :, None, None, :].expand(b, t, 1, 1, n).reshape(b * t, 1, 1, n)
        )
        return k, v, mask

    def forward(
        self, x: torch.Tensor, ctx: tuple[torch.Tensor, torch.Tensor, torch.Tensor], t: int
    ) -> torch.Tensor:
        b, length, d = x.shape  # length = T * P tokens, ordered latent by latent
        k, v, mask = ctx
        q = self.attn.project_q(self.norm(x))  # (B, H, T*P, hd)
        h, hd = q.shape[1], q.shape[3]
        q = q.view(b, h, t, length // t, hd).transpose(1, 2).reshape(b * t, h, length // t, hd)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        out = out.view(b, t, h, length // t, hd).permute(0, 1, 3, 2, 4).reshape(b, length, d)
        return self.attn.o(out)
