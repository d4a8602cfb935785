"""The AR audio decoder (Talker-like): next-token prediction over delayed multi-codebook columns.

Sequence of audio clip j (Eq. 6): [T_speech ∘ a_{j-1} ∘ a_j], where a clip is its codes wrapped
as [stream_bos, codes..., stream_eos] per codebook and delayed (codebook k shifted right by k).
One position is one delayed column: the K codebook embeddings are summed on input and K heads
predict the next column. A KV cache makes each column one forward pass of one position.
Every position of the sequence (text, a_{j-1}, a_j) takes the fusion CA to F_v(SA(v_{j-1})):
the previous clean video clip is known before clip j starts, so this sees nothing of clip j.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mavid.config import CreatorConfig
from mavid.creator.fusion import AudioFromVideo, audio_frame_columns
from mavid.creator.layers import Attention, apply_rope, rope_angles
from mavid.creator.phones import MAX_PHONE_POS, NO_TRACK, PHONE_VOCAB
from mavid.creator.text import TEXT_VOCAB

KV = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95


class GeneratedAudio(NamedTuple):
    """One clip's AR output."""

    cols: torch.Tensor  # (B, K, F + K + 1) delayed columns, bos/eos included
    sources: list[torch.Tensor]  # F_a sources (B, F, D) per layer
    # (B, n, F, V): each frame's probabilities of the first n codebooks' codes, as sampled
    # from (guided, before temperature, top-k and top-p); None unless asked for
    probs: torch.Tensor | None = None


class KVCache:
    """Per-call key/value buffers of every layer; belongs to one clip of one stream."""

    def __init__(self, layers: int, batch: int, heads: int, max_len: int, head_dim: int, like):
        shape = (batch, heads, max_len, head_dim)
        self.k = [like.new_zeros(shape) for _ in range(layers)]
        self.v = [like.new_zeros(shape) for _ in range(layers)]
        self.length = 0
        self.max_len = max_len

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> KV:
        n = k.shape[2]
        end = self.length + n
        if end > self.max_len:
            raise RuntimeError(f"KV cache overflow: {end} > {self.max_len}")
        self.k[layer][:, :, self.length : end] = k
        self.v[layer][:, :, self.length : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.k + self.v)


class AudioBlock(nn.Module):
    """Pre-norm SA (causal, RoPE) -> fusion CA to F_v (Eq. 6) -> MLP."""

    def __init__(self, cfg: CreatorConfig) -> None:
        super().__init__()
        d = cfg.audio_dim
        self.norm1 = nn.RMSNorm(d, eps=cfg.eps)
        self.attn = Attention(d, cfg.audio_heads, eps=cfg.eps, qk_norm=False)
        self.fuse_video = (
            AudioFromVideo(d, cfg.video_dim, cfg.audio_heads, cfg.eps) if cfg.fusion else None
        )
        self.norm2 = nn.RMSNorm(d, eps=cfg.eps)
        self.gate = nn.Linear(d, cfg.audio_ffn, bias=False)
        self.up = nn.Linear(d, cfg.audio_ffn, bias=False)
        self.down = nn.Linear(cfg.audio_ffn, d, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        layer: int,
        cache: KVCache | None,
        mask: torch.Tensor | None,
        fv_kv: KV | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, D) -> (x, SA(x) residual stream for F_a)."""
        h = self.norm1(x)
        q = apply_rope(self.attn.project_q(h), cos, sin)
        k, v = self.attn.project_kv(h)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.append(layer, k, v)
        causal = mask is None and x.shape[1] > 1  # prefill into an empty cache, or training
        x = x + self.attn.attend(q, k, v, mask=mask, causal=causal)
        after_sa = x
        if self.fuse_video is not None and fv_kv is not None:
            x = x + self.fuse_video(x, fv_kv)
        h = self.norm2(x)
        x = x + self.down(F.silu(self.gate(h)) * self.up(h))
        return x, after_sa


def sample_codes(
    logits: torch.Tensor, sampling: SamplingConfig, generator: torch.Generator | None
) -> torch.Tensor:
    """logits (B, K, V) -> (B, K) codes with temperature, top-k and top-p."""
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    v = logits.shape[-1]
    k = sampling.top_k if 0 < sampling.top_k < v else v
    # top-k first (sorted), so top-p and the draw work on k candidates instead of V
    values, order = logits.topk(k, dim=-1)  # (B, K, k), descending
    probs = (values / sampling.temperature).softmax(-1)
    if sampling.top_p < 1.0:
        drop = probs.cumsum(-1) - probs > sampling.top_p  # the first candidate always stays
        probs = probs.masked_fill(drop, 0.0)
    pick = torch.multinomial(probs.flatten(0, -2), 1, generator=generator)
    return order.flatten(0, -2).gather(-1, pick).view(logits.shape[:-1])


def column_phones(track: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """(B, F, 2) frame phones -> (B, length, 2) phones of the input columns 0..length-1.

    Input column m predicts column m + 1, which holds codebook 0 of frame m (the delay pattern
    puts codebook k of frame f in column f + 1 + k), so column m reads frame m's phone; columns
    past the clip's frames read silence.
    """
    if track is None:
        return None
    out = track.new_zeros(track.shape[0], length, 2)
    n = min(length, track.shape[1])
    out[:, :n] = track[:, :n]
    return out


def _cols(phones: torch.Tensor | None, m: int) -> torch.Tensor | None:
    return None if phones is None else phones[:, m : m + 1]


class AudioDecoder(nn.Module):
    def __init__(self, cfg: CreatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k, v = cfg.num_codebooks, cfg.audio_vocab
        self.text_embed = nn.Embedding(TEXT_VOCAB, cfg.audio_dim)
        self.code_embed = nn.Embedding(k * v, cfg.audio_dim)
        if cfg.phone_track:
            self.phone_embed = nn.Embedding(PHONE_VOCAB, cfg.audio_dim)
            self.phone_pos_embed = nn.Embedding(MAX_PHONE_POS, cfg.audio_dim)
        self.register_buffer("code_offsets", torch.arange(k) * v, persistent=False)
        self.blocks = nn.ModuleList(AudioBlock(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.RMSNorm(cfg.audio_dim, eps=cfg.eps)
        self.heads = nn.Linear(cfg.audio_dim, k * v, bias=False)

    def embed_columns(self, cols: torch.Tensor, phones: torch.Tensor | None = None) -> torch.Tensor:
        """(B, K, L) delayed codes [+ (B, L, 2) column phones] -> (B, L, D): the K codebook
        embeddings summed, plus the phone track's embedding when the preset has one."""
        x = self.code_embed(cols + self.code_offsets[None, :, None]).sum(1)
        return x + self.embed_phones(phones) if phones is not None else x

    def embed_phones(self, phones: torch.Tensor) -> torch.Tensor | float:
        """(B, L, 2) column phones -> (B, L, D); 0 for presets without a phone track."""
        if not self.cfg.phone_track:
            return 0.0
        present = phones[..., :1] >= 0  # NO_TRACK (-1): the item has no track at all
        phones = phones.clamp_min(0)
        x = self.phone_embed(phones[..., 0]) + self.phone_pos_embed(phones[..., 1])
        return x * present.to(x.dtype)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, K, V) next-column logits."""
        out = self.heads(self.norm(hidden))
        return out.view(*out.shape[:2], self.cfg.num_codebooks, self.cfg.audio_vocab)

    def run(
        self,
        x: torch.Tensor,
        start: int,
        cache: KVCache | None,
        mask: torch.Tensor | None,
        fv_kv: list[KV] | None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x (B, L, D) at positions start.. -> hidden (B, L, D), per-layer SA streams."""
        head_dim = self.cfg.audio_dim // self.cfg.audio_heads
        angles = rope_angles(torch.arange(start, start + x.shape[1], device=x.device), head_dim)
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        streams = []
        for i, block in enumerate(self.blocks):
            x, after_sa = block(x, cos, sin, i, cache, mask, fv_kv[i] if fv_kv else None)
            streams.append(after_sa)
        return x, streams

    def prefix(
        self,
        text_ids: torch.Tensor,
        prev_cols: torch.Tensor | None,
        prev_phones: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """[T_speech ∘ a_{j-1}] embedded: (B, Lt + Lp, D). `prev_phones`: (B, Fp, 2) track."""
        parts = [self.text_embed(text_ids)]
        if prev_cols is not None:
            cols = column_phones(prev_phones, prev_cols.shape[-1])
            parts.append(self.embed_columns(prev_cols, cols))
        return torch.cat(parts, dim=1)

    def generate(
        self,
        text_ids: torch.Tensor,
        prev_cols: torch.Tensor | None,
        num_frames: int,
        fv_kv: list[KV] | None,
        sampling: SamplingConfig,
        generator: torch.Generator | None,
        check: Callable[[], None] = lambda: None,
        stats: dict[str, int] | None = None,
        phones: torch.Tensor | None = None,
        prev_phones: torch.Tensor | None = None,
        phone_guidance: float = 1.0,
        expected_levels: int = 0,
    ) -> GeneratedAudio:
        """Sample clip j -> delayed columns (B, K, F + K + 1) and F_a sources (B, F, D) per layer.

        `phones` / `prev_phones`: the (B, F, 2) phone tracks of clips j and j-1 (phone track
        presets; None reads as silence). `phone_guidance` > 1: classifier-free guidance on the
        track, logits = l(no track) + g * (l(track) - l(no track)), computed as a second batch
        half without the tracks (decoders trained with phone dropout know that case).

        Positions where the delay pattern fixes the token (bos before, eos after) are forced;
        only real code positions are sampled, from the 1024 codes. `expected_levels` n > 0: also
        the probabilities each frame's first n codes were drawn from (`GeneratedAudio.probs`:
        the model's own distribution, guided, at temperature 1).
        """
        cfg = self.cfg
        k, f = cfg.num_codebooks, num_frames
        if isinstance(expected_levels, bool) or not 0 <= expected_levels <= k:
            raise ValueError(f"expected_levels must be in [0, {k}], got {expected_levels!r}")
        length = f + k + 1
        b = text_ids.shape[0]
        guided = phone_guidance != 1.0 and phones is not None and cfg.phone_track
        if guided:  # rows b.. are the same items without their tracks
            text_ids, prev_cols = _twice(text_ids), _twice(prev_cols)
            phones = torch.cat([phones, torch.full_like(phones, NO_TRACK)])
            if prev_phones is not None:
                prev_phones = torch.cat([prev_phones, torch.full_like(prev_phones, NO_TRACK)])
            if fv_kv is not None:
                fv_kv = [(_twice(kk), _twice(vv)) for kk, vv in fv_kv]
        rows = text_ids.shape[0]
        cols = torch.full(
            (rows, k, length), cfg.stream_eos, dtype=torch.long, device=text_ids.device
        )
        cols[:, :, 0] = cfg.stream_bos
        prefix = self.prefix(text_ids, prev_cols, prev_phones)
        col_phones = column_phones(phones, length)
        first = torch.cat([prefix, self.embed_columns(cols[:, :, :1], _cols(col_phones, 0))], dim=1)
        cache = KVCache(
            cfg.num_layers,
            rows,
            cfg.audio_heads,
            first.shape[1] + length,
            cfg.audio_dim // cfg.audio_heads,
            first,
        )
        if stats is not None:
            stats["cache_bytes"] = cache.nbytes()
        hidden, streams = self.run(first, 0, cache, None, fv_kv)
        cache.length = first.shape[1]
        fed = [[s[:, -1:]] for s in streams]  # SA streams of clip j's fed columns, per layer
        codebook = torch.arange(k, device=cols.device)
        probs = None
        if expected_levels:
            shape = (b, expected_levels, f, cfg.codebook_size)
            probs = torch.zeros(shape, dtype=torch.float32, device=cols.device)
        for m in range(1, length):
            check()
            logits = self.logits(hidden[:, -1:])[:, 0, :, : cfg.codebook_size]  # (R, K, 1024)
            if guided:
                logits = logits[b:] + phone_guidance * (logits[:b] - logits[b:])
            w = m - codebook  # index into [bos, codes..., eos] per codebook
            sampled = sample_codes(logits, sampling, generator)
            if probs is not None:  # codebook j holds frame m - 1 - j at step m
                for j in range(max(0, m - f), min(expected_levels, m)):
                    probs[:, j, m - 1 - j] = logits[:, j].float().softmax(-1)
            col = torch.where(w <= 0, cfg.stream_bos, cfg.stream_eos).expand(b, k).clone()
            is_code = (w >= 1) & (w <= f)
            col[:, is_code] = sampled[:, is_code]
            if guided:  # both halves go on with the guided codes
                col = _twice(col)
            cols[:, :, m] = col
            if m == length - 1:
                break
            hidden, streams = self.run(
                self.embed_columns(cols[:, :, m : m + 1], _cols(col_phones, m)),
                cache.length,
                cache,
                None,
                fv_kv,
            )
            cache.length += 1
            for i, s in enumerate(streams):
                fed[i].append(s)
        frame_cols = audio_frame_columns(f, k).to(cols.device)
        sources = [torch.cat(parts, dim=1)[:b, frame_cols] for parts in fed]
        return GeneratedAudio(cols[:b], sources, probs)


def _twice(x: torch.Tensor | None) -> torch.Tensor | None:
    """The batch twice over (guidance's two halves); None stays None."""
    return None if x is None else torch.cat([x, x])
