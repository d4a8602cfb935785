"""Training of the Creator: L_AR, L_DIFF and one step function per paper stage.

Stage 2: the AR audio decoder alone (cross-entropy). Stage 3: AR + DiT end to end,
L = L_AR + L_DIFF. (Stage 1, the Conductor, lives in mavid/conductor.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mavid.codecs.delay_pattern import data_mask, wrap_clip
from mavid.creator.audio_decoder import column_phones
from mavid.creator.fusion import audio_frame_columns
from mavid.creator.model import CreatorModel
from mavid.creator.phones import without_track
from mavid.creator.sampler import add_noise
from mavid.creator.text import batch_text


@dataclass
class CreatorBatch:
    """B training pairs of consecutive clips (j-1, j); `prev_*` None means clip j is first."""

    speech: list[str]
    motion: list[str]
    cur_codes: torch.Tensor  # (B, K, F) int64
    cur_latents: torch.Tensor  # (B, C, T, h, w)
    prev_codes: torch.Tensor | None = None  # (B, K, Fp)
    prev_latents: torch.Tensor | None = None  # (B, C, Tp, h, w)
    cur_phones: torch.Tensor | None = None  # (B, F, 2) phone track (phone-track presets)
    prev_phones: torch.Tensor | None = None  # (B, Fp, 2)
    ref_latents: torch.Tensor | None = None  # (B, C, 1, h, w) reference image (anchored presets)

    def to(self, device: torch.device | str) -> CreatorBatch:
        def move(t):
            return None if t is None else t.to(device)

        return CreatorBatch(
            self.speech,
            self.motion,
            move(self.cur_codes),
            move(self.cur_latents),
            move(self.prev_codes),
            move(self.prev_latents),
            move(self.cur_phones),
            move(self.prev_phones),
            move(self.ref_latents),
        )


def l_ar(
    model: CreatorModel,
    batch: CreatorBatch,
    fv_kv: list | None,
    code_dropout: float = 0.0,
    generator: torch.Generator | None = None,
    phone_dropout: float = 0.0,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Teacher-forced cross-entropy of clip j's delayed columns, bos/eos fill masked.

    `code_dropout`: the share of clip j's input columns whose code embeddings are dropped
    (their phone track stays), as Tacotron's always-on prenet dropout: with every previous
    code in view, copying the last frame predicts 40-ms speech frames so well that a small
    model never learns to follow the words; with some hidden it must. Training only.
    `phone_dropout`: the share of items that train without their phone tracks (clips j and
    j-1), so the decoder also learns the unconditional audio model that phone guidance
    (`CreatorConfig.phone_guidance`) steers away from.

    Returns the loss and the per-layer F_a sources (B, F, Da) for the DiT.
    """
    cfg = model.cfg
    dev = batch.cur_codes.device
    k, f = cfg.num_codebooks, batch.cur_codes.shape[-1]
    text, text_ok = batch_text(batch.speech, cfg.max_text_len)
    text, text_ok = text.to(dev), text_ok.to(dev)
    prev = (
        wrap_clip(batch.prev_codes, cfg.stream_bos, cfg.stream_eos)
        if batch.prev_codes is not None
        else None
    )
    cur = wrap_clip(batch.cur_codes, cfg.stream_bos, cfg.stream_eos)  # (B, K, F + K + 1)
    cur_phones, prev_phones = batch.cur_phones, batch.prev_phones
    if phone_dropout > 0 and cur_phones is not None:
        drop = _draw(torch.rand, (cur.shape[0],), generator, cur.float()) < phone_dropout
        cur_phones, prev_phones = without_track(cur_phones, drop), without_track(prev_phones, drop)
    phones = column_phones(cur_phones, f + k)  # input columns 0 .. F + K - 1
    x = torch.cat(
        [
            model.audio.prefix(text, prev, prev_phones if prev is not None else None),
            _drop_codes(model, cur[:, :, :-1], phones, code_dropout, generator),
        ],
        1,
    )
    b, length = x.shape[:2]
    start = length - (f + k)  # first position of clip j's columns
    valid = torch.ones(b, length, dtype=torch.bool, device=dev)
    valid[:, : text.shape[1]] = text_ok
    causal = torch.ones(length, length, dtype=torch.bool, device=dev).tril()
    mask = causal[None, None] & valid[:, None, None, :]  # (B, 1, L, L)
    hidden, streams = model.audio.run(x, 0, None, mask, fv_kv)
    logits = model.audio.logits(hidden[:, start:])  # (B, F + K, K, V) predicting columns 1..
    target = cur[:, :, 1:].transpose(1, 2)  # (B, F + K, K)
    keep = data_mask(k, f)[:, 1:].T.to(dev)  # (F + K, K): real codes only
    ce = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").view_as(target)
    loss = (ce * keep).sum() / (keep.sum() * b)
    cols = start + audio_frame_columns(f, k).to(dev)
    return loss, [s[:, cols] for s in streams]


def _drop_codes(
    model: CreatorModel,
    cols: torch.Tensor,
    phones: torch.Tensor | None,
    p: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Embedded input columns (B, L, D) with a share `p` of their code embeddings zeroed."""
    x = model.audio.embed_columns(cols)
    if p > 0:
        keep = _draw(torch.rand, x.shape[:2], generator, x) >= p
        x = x * keep[..., None].to(x.dtype)
    return x + model.audio.embed_phones(phones) if phones is not None else x


def l_diff(
    model: CreatorModel,
    batch: CreatorBatch,
    prefix,
    sources: list[torch.Tensor] | None,
    generator: torch.Generator | None = None,
    region_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Flow-matching velocity MSE on clip j's latents; a first clip keeps latent 0 clean (the
    reference image), as at inference.

    `region_weight` (h, w): each latent cell's weight in the mean (None: uniform), e.g. more on
    the mouth, a few cells of the frame that carry all of lip-sync."""
    x0 = batch.cur_latents
    b, _, t_lat = x0.shape[:3]
    noise = _draw(torch.randn, x0.shape, generator, x0)
    t = _draw(torch.rand, (b, 1), generator, x0).expand(b, t_lat).clone()
    weight = torch.ones(b, 1, t_lat, 1, 1, device=x0.device, dtype=x0.dtype)
    if batch.prev_latents is None:
        t[:, 0] = 0.0
        weight[:, :, 0] = 0.0
    if region_weight is not None:
        if region_weight.shape != x0.shape[3:]:
            grid = tuple(x0.shape[3:])
            raise ValueError(f"region_weight {tuple(region_weight.shape)} != latent grid {grid}")
        weight = weight * region_weight.to(x0.device, x0.dtype)
    weight = weight.expand(b, 1, t_lat, *x0.shape[3:])
    x_t = add_noise(x0, noise, t)
    audio_ctx = model.audio_context(sources, t_lat) if sources is not None else None
    text_kv = model.motion_kv(batch.motion, x0.device)
    v = model.video(x_t, t, prefix, text_kv, audio_ctx)
    err = (v - (noise - x0)).pow(2) * weight
    return err.sum() / (weight.sum() * err.shape[1])


def _draw(fn, shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """`fn(shape)` (torch.rand / randn) from `generator` on its own device, then moved to
    `like`'s: a CPU generator gives the same draws whether the model trains on CPU or GPU."""
    dev = generator.device if generator is not None else like.device
    return fn(shape, generator=generator, device=dev).to(like.device, like.dtype)


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params, max_norm: float) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    optimizer.step()
    return float(norm)


def stage2_step(
    model: CreatorModel,
    batch: CreatorBatch,
    optimizer: torch.optim.Optimizer,
    max_norm: float = 1.0,
    code_dropout: float = 0.0,
    generator: torch.Generator | None = None,
    phone_dropout: float = 0.0,
) -> dict[str, float]:
    """Stage 2: the AR audio decoder alone, L_AR (no video, so no F_v)."""
    model.train()
    loss, _ = l_ar(model, batch, None, code_dropout, generator, phone_dropout)
    norm = _step(optimizer, loss, model.audio.parameters(), max_norm)
    return {"l_ar": float(loss.detach()), "grad_norm": norm}


def noised_history(
    prev: torch.Tensor, max_t: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """History noise augmentation: v_{j-1} (B, C, T, h, w) noised to a time t ~ U(0, max_t)
    per item, and those times (B, T). At inference v_{j-1} is the model's own clean-looking but
    imperfect output; training on ground truth alone teaches the DiT to trust every detail of
    its history, so its errors compound clip after clip."""
    b, t_lat = prev.shape[0], prev.shape[2]
    t = (_draw(torch.rand, (b, 1), generator, prev) * max_t).expand(b, t_lat).contiguous()
    return add_noise(prev, _draw(torch.randn, prev.shape, generator, prev), t), t


def stage3_step(
    model: CreatorModel,
    batch: CreatorBatch,
    optimizer: torch.optim.Optimizer,
    max_norm: float = 1.0,
    generator: torch.Generator | None = None,
    code_dropout: float = 0.0,
    history_noise: float = 0.0,
    phone_dropout: float = 0.0,
    region_weight: torch.Tensor | None = None,
) -> dict[str, float]:
    """Stage 3: AR + DiT end to end through the fusion module, L = L_AR + L_DIFF.

    `history_noise` > 0 noises v_{j-1} (`noised_history`); the reference latent (anchored
    presets) is always clean. `region_weight`: L_DIFF's per-cell weights (`l_diff`). Parameters
    with requires_grad off (a frozen AR decoder) get no gradient, so they stay as they are."""
    model.train()
    prev, prev_t = batch.prev_latents, None
    if prev is not None and history_noise > 0:
        prev, prev_t = noised_history(prev, history_noise, generator)
    prefix, fv_kv = model.video_history(prev, batch.ref_latents, prev_t)
    loss_ar, sources = l_ar(model, batch, fv_kv, code_dropout, generator, phone_dropout)
    loss_diff = l_diff(
        model, batch, prefix, sources if model.cfg.fusion else None, generator, region_weight
    )
    loss = loss_ar + loss_diff
    params = [*model.audio.parameters(), *model.video.parameters(), *model.motion.parameters()]
    norm = _step(optimizer, loss, params, max_norm)
    return {
        "l_ar": float(loss_ar.detach()),
        "l_diff": float(loss_diff.detach()),
        "loss": float(loss.detach()),
        "grad_norm": norm,
    }
