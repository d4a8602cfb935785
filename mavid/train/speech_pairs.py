"""Generated speech for the AR audio decoder: many texts in many voices, no video.

Why: the world's answers are ~40 distinct texts spoken by 75 training voices. Trained on them
alone, the decoder memorises them: continuing the first mavid-tiny's stage 2 at lr 5e-4, the
training loss fell from 3.6 to 2.5 in 500 steps while the loss on held-out voices rose from 4.7
to 5.4. espeak-ng speech costs nothing but the synthesis (~40 ms an utterance with its codes),
so stage 2 (and stage 3's audio-only steps) also draw from a pool of utterances of every text
the avatar might say (the domain's answers, split into sentences, its non-test questions and
the shipped English corpus) in the non-test voices at random rates and pitches.

The pool is a pure function of (seed, config): utterance i draws its text and voice from
`step_rng(seed, i, stream=7)`. Each utterance is cut into clips as the world's answers are
(a short first clip, then full ones, each with the words whose middle falls inside it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from tqdm import tqdm

from mavid.creator.model import CreatorModel
from mavid.creator.phones import phone_track
from mavid.data.dialogue import LEAD_IN_S, TAIL_S, clip_layout
from mavid.data.domain import INTENTS, paraphrase_split
from mavid.data.speech import PhonemeTiming, Voice, synthesize
from mavid.data.visitor_turns import train_voices
from mavid.train.clips import ClipPair, ShapeKey, add_answer_pairs
from mavid.train.data import nonempty, step_rng

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class SpeechConfig:
    """The generated-speech pool of the Creator's audio stages."""

    utterances: int = 4000
    rate: tuple[int, int] = (120, 220)  # words per minute (the world: 140..195)
    pitch: tuple[int, int] = (15, 86)
    pitch_range: tuple[int, int] = (20, 91)

    def __post_init__(self) -> None:
        if self.utterances < 1:
            raise ValueError(f"utterances must be >= 1, got {self.utterances}")


def speech_texts() -> list[str]:
    """What the pool says: the domain's answers sentence by sentence, its train and val
    questions (never the test ones), and the shipped English corpus; deduplicated, in order."""
    texts: list[str] = []
    for intent in INTENTS:
        answers = list(intent.by_prop.values()) or [intent.answer_for()]
        for answer in answers:
            texts += _SENTENCE.split(answer.speech.strip())
        texts += [
            p for i, p in enumerate(intent.paraphrases) if paraphrase_split(intent, i) != "test"
        ]
    corpus = resources.files("mavid.conductor").joinpath("default_corpus.txt").read_text()
    # the corpus also holds directive examples (with <m_bos> ...): spoken lines only
    texts += [line.strip() for line in corpus.splitlines() if line.strip() and "<" not in line]
    return list(dict.fromkeys(t for t in texts if t))


def speech_pairs(
    model: CreatorModel,
    config: SpeechConfig,
    seed: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[ShapeKey, list[ClipPair]]:
    """The pool's (j-1, j) clip pairs (codes and phone tracks, no latents), grouped by shape."""
    codec = model.audio_codec
    if codec is None:
        raise ValueError("generated speech needs the preset's own audio tokenizer in the model")
    spec = model.preset.media
    sr, fps = spec.audio_sample_rate, spec.fps
    texts, voices = speech_texts(), train_voices()
    groups: dict[ShapeKey, list[ClipPair]] = {}
    codec.to(device)
    try:
        for i in tqdm(range(config.utterances), desc="speech", disable=not progress):
            rng = step_rng(seed, i, stream=7)
            text = texts[int(rng.integers(len(texts)))]
            voice = Voice(
                name=voices[int(rng.integers(len(voices)))],
                rate=int(rng.integers(*config.rate)),
                pitch=int(rng.integers(*config.pitch)),
                pitch_range=int(rng.integers(*config.pitch_range)),
            )
            utt = synthesize(text, voice, sample_rate=sr)
            layout = clip_layout(int(np.ceil((LEAD_IN_S + utt.duration + TAIL_S) * fps)), spec)
            total = layout[-1][0] + layout[-1][1]
            wave = np.zeros(spec.samples_for_frames(total), np.float32)
            lead = round(LEAD_IN_S * sr)
            wave[lead : lead + utt.audio.size] = utt.audio[: wave.size - lead]
            with torch.inference_mode():
                codes = codec.encode(torch.from_numpy(wave).to(device)).cpu()  # (K, total)
            track = None
            if model.cfg.phone_track:
                shifted = [
                    PhonemeTiming(p.ipa, p.start + LEAD_IN_S, p.end + LEAD_IN_S)
                    for p in utt.phonemes
                ]
                track = torch.from_numpy(phone_track(shifted, total, fps))
            clips = []
            for start, count in layout:
                t0, t1 = start / fps, (start + count) / fps
                said = [w.word for w in utt.words if t0 <= (w.start + w.end) / 2 + LEAD_IN_S < t1]
                clips.append((start, count, " ".join(said), ""))
            add_answer_pairs(groups, clips, codes, track)
    finally:
        codec.to("cpu")
    nonempty(groups, "generated speech clips")
    return {k: groups[k] for k in sorted(groups)}
