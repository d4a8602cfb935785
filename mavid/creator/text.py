"""Directive text for the Creator: UTF-8 bytes, and a small encoder for the motion directive.

The Creator reads bytes (no tokenizer file to ship or keep in sync with the Conductor's BPE).
"""

from __future__ import annotations

import torch
from torch import nn

from mavid.creator.layers import Attention, FeedForward

TEXT_BOS = 256
TEXT_EOS = 257
TEXT_PAD = 258
TEXT_VOCAB = 259


def encode_text(text: str, max_len: int) -> list[int]:
    """[bos, bytes..., eos], the bytes truncated so the whole fits `max_len`."""
    data = list(text.encode("utf-8"))[: max(0, max_len - 2)]
    return [TEXT_BOS, *data, TEXT_EOS]


def batch_text(texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, L) and a validity mask (B, L)."""
    ids = [encode_text(t, max_len) for t in texts]
    length = max(len(i) for i in ids)
    out = torch.full((len(ids), length), TEXT_PAD, dtype=torch.long)
    mask = torch.zeros((len(ids), length), dtype=torch.bool)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = True
    return out, mask


class MotionEncoder(nn.Module):
    """Bidirectional byte encoder giving T_motion, the keys of the video blocks' text CA."""

    def __init__(self, dim: int, heads: int, ffn: int, layers: int, max_len: int, eps: float):
        super().__init__()
        self.embed = nn.Embedding(TEXT_VOCAB, dim)
        self.pos = nn.Embedding(max_len, dim)
        self.norms1 = nn.ModuleList(nn.LayerNorm(dim, eps=eps) for _ in range(layers))
        self.attns = nn.ModuleList(Attention(dim, heads, eps=eps) for _ in range(layers))
        self.norms2 = nn.ModuleList(nn.LayerNorm(dim, eps=eps) for _ in range(layers))
        self.ffns = nn.ModuleList(FeedForward(dim, ffn) for _ in range(layers))
        self.out_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, L) -> (B, L, D); padded positions are never attended to."""
        x = self.embed(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        attn_mask = mask[:, None, None, :]
        for n1, attn, n2, ffn in zip(self.norms1, self.attns, self.norms2, self.ffns, strict=True):
            h = n1(x)
            x = x + attn.attend(attn.project_q(h), *attn.project_kv(h), mask=attn_mask)
            x = x + ffn(n2(x))
        return self.out_norm(x)
