"""Training the Conductor's ear (`mavid.conductor.ear`): CTC on generated espeak-ng speech.

Every batch is synthesized afresh, a pure function of (seed, step): texts the avatar's domain
knows (its answers' sentences, non-test questions, the shipped English corpus) and random
strings of common English words (so the ear spells words no domain text has), spoken by the
non-test voices at random rates and pitches, with the visitor turns' silences, levels and
noise beds; SpecAugment-style masks on the features. Nothing held out (test voices, test
paraphrases) is ever spoken. ~40 ms of synthesis an utterance: `--workers 1` makes the next
batches in a second process while one trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer
import numpy as np
import torch
from torch import nn

from mavid.asr import ASR_SAMPLE_RATE, normalize_text
from mavid.conductor.ear import Ear, decode_greedy, encode_text
from mavid.conductor.word_reading import common_words
from mavid.data.ambience import ambience, mix_under
from mavid.data.domain import more_questions
from mavid.data.speech import MAX_EXTRA_VARIANTS, Voice, add_variants, synthesize
from mavid.data.visitor_turns import (
    NOISES,
    TurnsConfig,
    crossed_voices,
    more_train_voices,
    train_voices,
)
from mavid.train.data import step_rng
from mavid.train.speech_pairs import speech_texts

__all__ = ["EarBatch", "EarDataConfig", "EarTask", "common_words"]

_VAL_STREAM = 9173


@dataclass(frozen=True)
class EarDataConfig:
    batch_size: int = 16
    domain_share: float = 0.5  # of utterances saying a domain text; the rest: common words
    words: tuple[int, int] = (2, 8)  # a common-word string's length
    vocabulary: int = 6000  # the most common words drawn from
    time_masks: int = 2
    time_mask: int = 20  # frames (10 ms) at most per mask
    freq_masks: int = 2
    freq_mask: int = 12  # mel bands at most per mask
    val_utterances: int = 48
    # toward people's voices (0: off, and then the batches are those of the first ear runs):
    # espeak spoken at 16 kHz x U(1 - tract, 1 + tract) and read as 16 kHz, which scales its
    # formants and pitch together as a longer or shorter vocal tract does
    tract: float = 0.0
    reverb_share: float = 0.0  # of utterances spoken in a room (a decaying-noise echo tail)
    reverb_s: tuple[float, float] = (0.15, 0.8)  # the room's RT60
    reverb_drr_db: tuple[float, float] = (-3.0, 12.0)  # direct-to-reverberant ratio
    # the domain texts said also include the knowledge base's other ways of asking
    # (`domain.more_questions`: never a held-out question); off, the first ear runs' texts
    more_questions: bool = False
    # half the utterances in the other variants espeak-ng ships (`more_train_voices`: none
    # with a held-out voice's timbre); off, the world's non-test voices alone
    more_voices: bool = False
    # this many voice variants nobody shipped, each setting (each formant, pitch, voicing,
    # ...) crossed from a variant of the world's training voices (`crossed_voices`), said in
    # the world's languages; with `more_voices`, both share the half of the utterances
    crossed_voices: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or not 0.0 <= self.domain_share <= 1.0:
            raise ValueError(f"bad ear data config: {self}")
        if not 1 <= self.words[0] <= self.words[1]:
            raise ValueError(f"words must be 1 <= lo <= hi, got {self.words}")
        if not 0 <= self.crossed_voices <= MAX_EXTRA_VARIANTS:
            raise ValueError(
                f"crossed_voices must be in [0, {MAX_EXTRA_VARIANTS}], got {self.crossed_voices}"
            )
        if not 0.0 <= self.tract < 0.5 or not 0.0 <= self.reverb_share <= 1.0:
            raise ValueError(
                f"tract must be in [0, 0.5) and reverb_share in [0, 1], got {self.tract}, "
                f"{self.reverb_share}"
            )


@dataclass
class EarBatch:
    feats: torch.Tensor  # (B, T, n_mels)
    lengths: torch.Tensor  # (B,)
    targets: torch.Tensor  # (sum of target lengths,)
    target_lengths: torch.Tensor  # (B,)
    texts: list[str]

    def to(self, device: torch.device | str) -> EarBatch:
        return EarBatch(
            self.feats.to(device),
            self.lengths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
            self.texts,
        )


class EarTask:
    """The ear's CTC training as a `TrainTask` (`run_agent.py train --stage ear`)."""

    def __init__(
        self,
        seed: int,
        data: EarDataConfig | None = None,
        model: Ear | None = None,
    ) -> None:
        self.seed = seed
        self.data = data or EarDataConfig()
        self.model = model if model is not None else Ear()
        self.turns = TurnsConfig()
        self.voices = train_voices()
        self.more_voices = more_train_voices() if self.data.more_voices else []
        # (batch workers fork from this process: they speak them too)
        self.crossed = crossed_voices(self.data.crossed_voices, seed)
        add_variants(self.crossed)
        languages = sorted({name.split("+", 1)[0] for name in self.voices})
        self.more_voices += [f"{lang}+{v}" for lang in languages for v in self.crossed]
        self.texts = speech_texts()
        if self.data.more_questions:
            self.texts += [q for qs in more_questions().values() for q in qs]
        self.words = common_words(self.data.vocabulary)
        # Zipf's law over the words' ranks: common words often, rare ones sometimes
        w = 1.0 / np.arange(1, len(self.words) + 1)
        self.word_p = w / w.sum()
        self.ctc = nn.CTCLoss(blank=0, zero_infinity=True)
        self._val: EarBatch | None = None

    def trainable(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def voice(self, rng: np.random.Generator) -> Voice:
        """A training voice at a random rate and pitch: with `more_voices` or
        `crossed_voices`, half of them from those."""
        voices = self.more_voices if self.more_voices and rng.random() < 0.5 else self.voices
        return self.turns.voice(voices, rng)

    def utterance(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """One spoken text with its 16 kHz audio, as a visitor's turn sounds."""
        d, c = self.data, self.turns
        if rng.random() < d.domain_share:
            text = self.texts[int(rng.integers(len(self.texts)))]
        else:
            n = int(rng.integers(d.words[0], d.words[1] + 1))
            picks = rng.choice(len(self.words), n, p=self.word_p)
            text = " ".join(self.words[int(i)] for i in picks)
        voice = self.voice(rng)
        rate = ASR_SAMPLE_RATE
        if d.tract:
            rate = round(ASR_SAMPLE_RATE * float(rng.uniform(1 - d.tract, 1 + d.tract)))
        words = synthesize(text, voice, sample_rate=rate).audio  # read as ASR_SAMPLE_RATE
        pad = [np.zeros(round(float(rng.uniform(*c.silence_s)) * ASR_SAMPLE_RATE), np.float32)
               for _ in range(2)]  # fmt: skip
        speech = np.concatenate([pad[0], words, pad[1]])
        if d.reverb_share and rng.random() < d.reverb_share:
            speech = self._in_room(speech, rng)
        speech *= np.float32(10 ** (float(rng.uniform(*c.gain_db)) / 20))
        if rng.random() < c.noise_share:
            bed = ambience(str(rng.choice(NOISES[1:])), speech.size, ASR_SAMPLE_RATE, rng)
            speech = mix_under(speech, bed, float(rng.uniform(*c.noise_db)))
        return np.clip(speech, -1, 1).astype(np.float32), normalize_text(text)

    def _in_room(self, speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`speech` heard in a room: the direct sound plus an exponentially decaying noise
        tail (RT60 and direct-to-reverberant ratio drawn), at the same loudness."""
        d = self.data
        rt60 = float(rng.uniform(*d.reverb_s))
        t = np.arange(round(rt60 * ASR_SAMPLE_RATE)) / ASR_SAMPLE_RATE
        tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
        tail *= 10 ** (-float(rng.uniform(*d.reverb_drr_db)) / 20) / np.sqrt(np.sum(tail**2))
        tail[0] += 1.0
        n = speech.size + tail.size - 1
        size = 1 << (n - 1).bit_length()
        wet = np.fft.irfft(np.fft.rfft(speech, size) * np.fft.rfft(tail, size), size)[: speech.size]
        rms = np.sqrt(np.mean(speech**2)) / max(np.sqrt(np.mean(wet**2)), 1e-9)
        return (wet * rms).astype(np.float32)

    def _batch(self, rng: np.random.Generator, size: int, augment: bool) -> EarBatch:
        utts = [self.utterance(rng) for _ in range(size)]
        longest = max(a.size for a, _ in utts)
        wave = torch.zeros(size, longest)
        for i, (a, _) in enumerate(utts):
            wave[i, : a.size] = torch.from_numpy(a)
        hop = self.model.config.hop
        lengths = torch.tensor([a.size // hop + 1 for a, _ in utts])
        with torch.no_grad():
            feats = self.model.features(wave)
        # the normalisation saw the padding too: renormalise each item over its own frames
        for i, n in enumerate(lengths.tolist()):
            x = feats[i, :n]
            feats[i, :n] = (x - x.mean(0)) / x.std(0).clamp(min=1e-3)
            feats[i, n:] = 0.0
            if augment:
                self._mask(feats[i, :n], rng)
        targets = [encode_text(t) for _, t in utts]
        return EarBatch(
            feats,
            lengths,
            torch.tensor([i for t in targets for i in t], dtype=torch.long),
            torch.tensor([len(t) for t in targets]),
            [t for _, t in utts],
        )

    def _mask(self, x: torch.Tensor, rng: np.random.Generator) -> None:
        d = self.data
        for _ in range(d.time_masks):
            w = int(rng.integers(0, d.time_mask + 1))
            s = int(rng.integers(0, max(1, x.shape[0] - w)))
            x[s : s + w] = 0.0
        for _ in range(d.freq_masks):
            w = int(rng.integers(0, d.freq_mask + 1))
            s = int(rng.integers(0, max(1, x.shape[1] - w)))
            x[:, s : s + w] = 0.0

    def batch(self, step: int) -> EarBatch:
        return self._batch(step_rng(self.seed, step), self.data.batch_size, augment=True)

    def _ctc(self, logp: torch.Tensor, batch: EarBatch) -> torch.Tensor:
        """CTC loss of (B, T', V) log-probabilities against the batch's letters."""
        out_len = self.model.frames_out(batch.lengths)
        return self.ctc(logp.transpose(0, 1), batch.targets, out_len, batch.target_lengths)

    def loss(self, batch: EarBatch) -> torch.Tensor:
        return self._ctc(self.model(batch.feats, batch.lengths), batch)

    def train_step(
        self, batch: EarBatch, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        self.model.train()
        batch = batch.to(next(self.model.parameters()).device)
        loss = self.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_grad_norm)
        optimizer.step()
        return {"loss": loss.detach().item()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """CTC loss and greedy letter / word error rates on a fixed set of utterances (their
        own random stream: other texts and voices than any training step's)."""
        if self._val is None:
            rng = np.random.default_rng([self.seed, _VAL_STREAM])
            self._val = self._batch(rng, self.data.val_utterances, augment=False)
        self.model.eval()
        batch = self._val.to(next(self.model.parameters()).device)
        logp = self.model(batch.feats, batch.lengths)
        loss = self._ctc(logp, batch)
        out_len = self.model.frames_out(batch.lengths)
        hyps = [decode_greedy(lp[:n].argmax(-1)) for lp, n in zip(logp, out_len, strict=True)]
        return {
            "val_loss": float(loss),
            "val_cer": float(jiwer.cer(batch.texts, hyps)),
            "val_wer": float(jiwer.wer(batch.texts, hyps)),
        }

    def save(self, directory) -> None:
        self.model.save_pretrained(directory)
