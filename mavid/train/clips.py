"""The Creator's training data: consecutive clip pairs (j-1, j) of the world's answers, encoded
once by the trained codecs into audio codes and video latents.

Each answer is cut into clips exactly as the Creator makes them (`DialogueSample.clips`: a short
first clip, then full ones), each with the words spoken and the motions active in its window.
Audio token frame f spans video frame f (25 Hz both), so clip codes are a slice of the whole
answer's codes; each clip's frames (1 + 4k) are encoded alone, as each is decoded alone.
Pairs of the same shapes are grouped so a batch stacks: (first clip, no history),
(clip 1 after the short clip 0), (full clip after a full clip).
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


@torch.inference_mode()
def encode_clip_pairs(
    samples: Iterable[DialogueSample], model: CreatorModel, with_latents: bool = True
) -> dict[ShapeKey, list[ClipPair]]:
    """All (j-1, j) pairs of the samples' answers, grouped by shape."""
    codec, vae = model.audio_codec, model.video_vae
    if codec is None or vae is None:
        raise ValueError("encoding the world needs the preset's own codecs inside the model")
    groups: dict[ShapeKey, list[ClipPair]] = {}
    for s in samples:
        check_media(s, model.preset.media)
        wave = torch.from_numpy(s.speech_audio.astype(np.float32))
        codes = codec.encode(wave)  # (K, T) with T = frames of the answer
        if codes.shape[1] < s.frames.shape[0]:
            raise ValueError(
                f"sample {s.plan.key}: {codes.shape[1]} audio token frames for "
                f"{s.frames.shape[0]} video frames"
            )
        track = None
        if model.cfg.phone_track:
            track = torch.from_numpy(answer_phone_track(s))
        prev: ClipPair | None = None
        for clip in s.clips:
            lo, hi = clip.start_frame, clip.start_frame + clip.num_frames
            latents = None
            if with_latents:
                video = torch.from_numpy(s.frames[lo:hi]).permute(3, 0, 1, 2)[None].float()
                latents = vae.encode(video / 127.5 - 1.0)[0]  # (C, T, h, w)
            pair = ClipPair(clip.speech, clip.motion, codes[:, lo:hi].clone(), latents)
            if track is not None:
                pair.cur_phones = track[lo:hi].clone()
            if prev is not None:
                pair.prev_codes, pair.prev_latents = prev.cur_codes, prev.cur_latents
                pair.prev_phones = prev.cur_phones
            key = (0 if prev is None else prev.cur_codes.shape[1], clip.num_frames)
            groups.setdefault(key, []).append(pair)
            prev = pair
    nonempty(groups, "clips")
    return {k: groups[k] for k in sorted(groups)}


def stack_pairs(pairs: list[ClipPair]) -> CreatorBatch:
    """Pairs of one shape group -> a CreatorBatch (latents empty if none were encoded)."""
    first = pairs[0]
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
    )


def pick_batch(
    groups: dict[ShapeKey, list[ClipPair]], rng: np.random.Generator, batch_size: int
) -> CreatorBatch:
    """One shape group, drawn in proportion to its size, then `batch_size` pairs of it."""
    keys = list(groups)
    sizes = np.array([len(groups[k]) for k in keys], dtype=float)
    key = keys[int(rng.choice(len(keys), p=sizes / sizes.sum()))]
    items = groups[key]
    return stack_pairs([items[i] for i in pick(rng, len(items), batch_size)])
