"""The Creator's training data: consecutive clip pairs (j-1, j) of the world's answers, encoded
once by the trained codecs into audio codes and video latents.

Each answer is cut into clips exactly as the Creator makes them (`DialogueSample.clips`: a short
first clip, then full ones), each with the words spoken and the motions active in its window.
Audio token frame f spans video frame f (25 Hz both), so clip codes are a slice of the whole
answer's codes; each clip's frames (1 + 4k) are encoded alone, as each is decoded alone.
Pairs of the same shapes are grouped so a batch stacks: (first clip, no history),
(clip 1 after the short clip 0), (full clip after a full clip).

Presets that anchor every clip to a reference image (`CreatorConfig.reference_anchor`) get, per
answer, the latents of a few of its frames as reference candidates: the first frame (what the
reference is at inference) and frames a quarter, half and three quarters in, so the DiT learns
to take the identity from the reference, not its mouth or head pose. Each batch item draws one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from mavid.creator.model import CreatorModel
from mavid.creator.phones import phone_track
from mavid.creator.training import CreatorBatch
from mavid.data.dialogue import LEAD_IN_S, DialogueSample
from mavid.data.speech import PhonemeTiming, synthesize
from mavid.train.data import check_media, nonempty, pick

ShapeKey = tuple[int, int]  # (frames of clip j-1, 0 if none; frames of clip j)


@dataclass
class ClipPair:
    speech: str
    motion: str
    cur_codes: torch.Tensor  # (K, F) int64
    cur_latents: torch.Tensor | None  # (C, T, h, w); None when latents were not asked for
    prev_codes: torch.Tensor | None = None  # (K, Fp)
    prev_latents: torch.Tensor | None = None  # (C, Tp, h, w)
    cur_phones: torch.Tensor | None = None  # (F, 2) phone track; None without one
    prev_phones: torch.Tensor | None = None  # (Fp, 2)
    ref_latents: torch.Tensor | None = None  # (R, C, 1, h, w) reference candidates of the answer


def answer_phone_track(sample: DialogueSample) -> np.ndarray:
    """(frames, 2) phone track of the sample's answer on its own clock.

    espeak-ng is deterministic, so speaking the answer again with the sample's voice gives
    the phoneme timing of the world's audio exactly (checked against the stored word times).
    """
    utt = synthesize(sample.answer.speech, sample.plan.avatar_voice, sample.sample_rate)
    shift = LEAD_IN_S
    if (
        utt.words
        and sample.words
        and abs(utt.words[0].start + shift - sample.words[0].start) > 1e-3
    ):
        raise ValueError(
            f"sample {sample.plan.key}: re-synthesised timing differs from the world's"
        )
    phonemes = [PhonemeTiming(p.ipa, p.start + shift, p.end + shift) for p in utt.phonemes]
    return phone_track(phonemes, sample.frames.shape[0], sample.fps)


REFERENCE_POSITIONS = (0.0, 0.25, 0.5, 0.75)  # where in the answer the reference candidates are


def _video(frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (1, 3, F, H, W) in [-1, 1] on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(3, 0, 1, 2)[None]
    return x.float() / 127.5 - 1.0


def reference_latents(vae, frames: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """(R, C, 1, h, w): one-frame latents of the answer's frames at REFERENCE_POSITIONS."""
    idx = [min(int(p * len(frames)), len(frames) - 1) for p in REFERENCE_POSITIONS]
    return torch.cat([vae.encode(_video(frames[i : i + 1], device)) for i in idx]).cpu()


@torch.inference_mode()
def encode_clip_pairs(
    samples: Iterable[DialogueSample],
    model: CreatorModel,
    with_latents: bool = True,
    device: torch.device | str = "cpu",
) -> dict[ShapeKey, list[ClipPair]]:
    """All (j-1, j) pairs of the samples' answers, grouped by shape. The codecs run on
    `device` for the encoding (and the model returns to the CPU); the pairs stay on the CPU."""
    codec, vae = model.audio_codec, model.video_vae
    if codec is None or vae is None:
        raise ValueError("encoding the world needs the preset's own codecs inside the model")
    codec.to(device)
    vae.to(device)
    try:
        return _encode_pairs(samples, model, with_latents, device)
    finally:
        codec.to("cpu")
        vae.to("cpu")


def _encode_pairs(samples, model, with_latents, device) -> dict[ShapeKey, list[ClipPair]]:
    codec, vae = model.audio_codec, model.video_vae
    anchored = with_latents and model.cfg.reference_anchor
    groups: dict[ShapeKey, list[ClipPair]] = {}
    for s in samples:
        check_media(s, model.preset.media)
        wave = torch.from_numpy(s.speech_audio.astype(np.float32)).to(device)
        codes = codec.encode(wave).cpu()  # (K, T) with T = frames of the answer
        if codes.shape[1] < s.frames.shape[0]:
            raise ValueError(
                f"sample {s.plan.key}: {codes.shape[1]} audio token frames for "
                f"{s.frames.shape[0]} video frames"
            )
        track = None
        if model.cfg.phone_track:
            track = torch.from_numpy(answer_phone_track(s))
        refs = reference_latents(vae, s.frames, device) if anchored else None

        def latents_of(lo: int, hi: int, frames=s.frames) -> torch.Tensor:
            return vae.encode(_video(frames[lo:hi], device))[0].cpu()  # (C, T, h, w)

        add_answer_pairs(
            groups,
            [(c.start_frame, c.num_frames, c.speech, c.motion) for c in s.clips],
            codes,
            track,
            latents_of if with_latents else None,
            refs,
        )
    nonempty(groups, "clips")
    return {k: groups[k] for k in sorted(groups)}


ClipSpan = tuple[int, int, str, str]  # (start frame, frames, speech prompt, motion prompt)


def add_answer_pairs(
    groups: dict[ShapeKey, list[ClipPair]],
    clips: list[ClipSpan],
    codes: torch.Tensor,
    track: torch.Tensor | None,
    latents_of=None,
    refs: torch.Tensor | None = None,
) -> None:
    """Append the (j-1, j) pairs of one answer to `groups`: `codes` (K, T) and `track` (T, 2)
    on the answer's clock, `latents_of(lo, hi)` the latents of frames lo..hi (None: audio only),
    `refs` the answer's reference candidates."""
    prev: ClipPair | None = None
    for start, count, speech, motion in clips:
        lo, hi = start, start + count
        latents = latents_of(lo, hi) if latents_of is not None else None
        pair = ClipPair(speech, motion, codes[:, lo:hi].clone(), latents)
        pair.ref_latents = refs
        if track is not None:
            pair.cur_phones = track[lo:hi].clone()
        if prev is not None:
            pair.prev_codes, pair.prev_latents = prev.cur_codes, prev.cur_latents
            pair.prev_phones = prev.cur_phones
        key = (0 if prev is None else prev.cur_codes.shape[1], count)
        groups.setdefault(key, []).append(pair)
        prev = pair


def stack_pairs(pairs: list[ClipPair], rng: np.random.Generator | None = None) -> CreatorBatch:
    """Pairs of one shape group -> a CreatorBatch (latents empty if none were encoded). With
    reference candidates, each item takes the one `rng` draws (the first without an rng)."""
    first = pairs[0]
    refs = None
    if first.ref_latents is not None:
        n = first.ref_latents.shape[0]
        pick_ref = (lambda: int(rng.integers(n))) if rng is not None else (lambda: 0)
        refs = torch.stack([p.ref_latents[pick_ref()] for p in pairs])
    latents = (
        torch.stack([p.cur_latents for p in pairs])
        if first.cur_latents is not None
        else torch.zeros(len(pairs), 0)
    )
    has_prev = first.prev_codes is not None
    has_phones = first.cur_phones is not None
    return CreatorBatch(
        speech=[p.speech for p in pairs],
        motion=[p.motion for p in pairs],
        cur_codes=torch.stack([p.cur_codes for p in pairs]),
        cur_latents=latents,
        prev_codes=torch.stack([p.prev_codes for p in pairs]) if has_prev else None,
        prev_latents=(
            torch.stack([p.prev_latents for p in pairs])
            if has_prev and first.prev_latents is not None
            else None
        ),
        cur_phones=torch.stack([p.cur_phones for p in pairs]) if has_phones else None,
        prev_phones=(
            torch.stack([p.prev_phones for p in pairs]) if has_phones and has_prev else None
        ),
        ref_latents=refs,
    )


def pick_batch(
    groups: dict[ShapeKey, list[ClipPair]], rng: np.random.Generator, batch_size: int
) -> CreatorBatch:
    """One shape group, drawn in proportion to its size, then `batch_size` pairs of it."""
    keys = list(groups)
    sizes = np.array([len(groups[k]) for k in keys], dtype=float)
    key = keys[int(rng.choice(len(keys), p=sizes / sizes.sum()))]
    items = groups[key]
    return stack_pairs([items[i] for i in pick(rng, len(items), batch_size)], rng)
