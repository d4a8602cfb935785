"""The tiny Conductor's hearing: a spoken turn's words, written down before the Thinker reads it.

A Thinker trained from scratch on a few hundred synthetic voices does not hear words (issue 7:
6 % of held-out spoken turns understood), and people's voices are further still from what it
heard in training. PocketSphinx's acoustic model was trained on people's speech; its transcript
becomes the turn's text, in a language model written from what the Conductor knows (its
training texts: `mavid.data.domain.known_corpus`), so the Thinker reads the turn as it reads a
typed one. Saved beside the Thinker (`hearing.json`); a real Qwen2.5-Omni hears for itself and
has none.

With an ear (`mavid.conductor.ear`, saved beside the Thinker in `ear/`), the turn is heard by
the ear first, and its letters are the transcript where it is sure of them (its voices are
espeak's, whose held-out voices PocketSphinx hears badly); people's voices leave it unsure, and
PocketSphinx writes those down as before. Before its own letters, the ear checks the questions
the Conductor knows (`HearingConfig.known`): one whose CTC loss per letter against the turn is
low enough is what was said, however unsure the ear is (the val split's spoken known questions,
in voices it never heard: 97 % taken so, none wrongly; from the ear's letters the knowledge
base finds 66 %). Where it is sure of its letters, they are read as words of those questions
(`mavid.conductor.ear_words`: a beam search through their words, scored by their bigram), not
as the misspelt letters they are.
The turns the ear leaves (people's voices among them) may be written down by Whisper tiny.en
instead of PocketSphinx (`HearingConfig.recognizer`, `mavid.whisper_asr`): PocketSphinx in the
domain's language model writes whatever a person says as the domain's words; Whisper, trained
on people's speech, writes it down as said. Where the ear's words fit its own hearing of the
turn badly (the word search bends a question it never met into the known words), the
recognizer gives a second opinion, read where its words fit the ear's hearing better
(`HearingConfig.ear_second_opinion`).
(Tried first: both transcripts, the one nearer a known question kept; PocketSphinx's domain
language model makes every transcript sound like a known question, and it won too often: val
turns 45 % against 55 % for the sure ear alone.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from rapidfuzz import fuzz, process

from mavid.asr import Recognizer
from mavid.conductor.ear import EAR_DIR, Ear, encode_text
from mavid.conductor.ear_words import WordSearch
from mavid.conductor.features import check_turn
from mavid.conductor.format import plain_words
from mavid.conductor.saved_config import check_int, check_number, load_config, texts
from mavid.interfaces import UserTurn
from mavid.whisper_asr import WhisperRecognizer

__all__ = [
    "EAR_CHECK_DIR",
    "HEARING_CONFIG_NAME",
    "WHISPER_DIR",
    "Heard",
    "Hearing",
    "HearingConfig",
    "known_targets",
    "recognizer",
    "word_search",
]

log = logging.getLogger(__name__)

HEARING_CONFIG_NAME = "hearing.json"
WHISPER_DIR = "whisper"  # a Whisper directory an export copies beside the Thinker
EAR_CHECK_DIR = "ear-check"  # the second ear (`HearingConfig.ear_check`) beside the Thinker
# Below this RMS (-70 dBFS) a turn holds no words: PocketSphinx makes some up from silence.
SILENCE_RMS = 10 ** (-70 / 20)


@dataclass(frozen=True)
class HearingConfig:
    """How a spoken turn is written down (saved beside the Thinker it was trained for)."""

    lm: Literal["domain", "general"] = "domain"  # "general": PocketSphinx's own en-US model
    corpus: tuple[str, ...] = ()  # the domain model's texts (lm="domain")
    # keep the audio beside its transcript (the Thinker then hears and reads the turn); off,
    # the transcript replaces it
    keep_audio: bool = False
    # the ear saved beside the Thinker (`ear/`) hears first; its letters are the transcript
    # where its confidence (`Ear.hear`) reaches `ear_confidence` (people's voices stay below:
    # docs/what-was-tried.md), else the `recognizer` writes the turn down
    ear: bool = False
    ear_confidence: float = 0.8
    # a second ear, trained apart (saved in `ear-check/`), must be as sure: the ear's letters
    # count where the lower of the two sureness figures reaches `ear_confidence`. Each ear is
    # sure of a different person now and then (round 8's of a digit string at 0.803, round
    # 12's of a playing-card recording at 0.870); both of the same one, none of 14
    # (docs/what-was-tried.md, round 12)
    ear_check: bool = False
    # texts the ear checks first (the knowledge base's questions): one that fits the turn's
    # audio (`Ear.misfit`, CTC loss per letter, at most `known_misfit`) is the transcript, in
    # plain words, however sure the ear is of its own letters (docs/what-was-tried.md)
    known: tuple[str, ...] = ()
    known_misfit: float = 1.2
    # the fit is tried on this many known questions, those spelt most like the ear's letters
    # (rapidfuzz ratio): a question that fits ranks first or second there (239 of 239 spoken
    # known questions measured, round 9), and fitting 700 cost 75 ms a turn (32: about 4)
    known_shortlist: int = 32
    # the ear's letters read as words of the known questions (`mavid.conductor.ear_words`: a
    # beam search through their words, scored by their bigram with this weight); off: its
    # greedy letters, misspelt as they come
    ear_words: bool = False
    ear_words_lm_weight: float = 1.5
    ear_words_score: float = -1.0
    ear_words_beam: int = 128
    # what writes down the turns the ear leaves: "pocketsphinx" in the `lm` language model, or
    # "whisper" (`mavid.whisper_asr`: people's voices nearly word for word, where PocketSphinx
    # writes them as the domain's words) from `whisper_model`, a local CTranslate2 directory
    # (relative: to the directory the hearing is saved in; "": the copy shipped in a wheel),
    # decoded with a beam of `whisper_beam`
    recognizer: Literal["pocketsphinx", "whisper"] = "pocketsphinx"
    whisper_model: str = ""
    whisper_beam: int = 5
    # Whisper's other hypotheses scoring within this (mean log-probability per token) of its
    # best go with its words (`Heard.alternatives`): the knowledge base may read one of them
    # instead, one nearly a question it knows (`KnowledgeConfig.alternative_above`), where
    # Whisper misheard a word the domain has ("Can I walk in your mind?" for "Can I park
    # nearby?": docs/what-was-tried.md, round 13). 0: its best words alone
    whisper_alternatives: float = 0.0
    # a second opinion on the ear's words: where they fit its own hearing of the turn worse
    # than this (`Ear.misfit`, CTC loss per letter), the recognizer writes the turn down too,
    # and its words are read where they fit the ear's hearing better. The word search knows
    # only the knowledge base's words and word pairs, and bends a question it never met into
    # them ("tell me the museums" for "Tell me the museum rules."); the recognizer's words
    # are judged by the same ear, so a person's voice (never sure enough to get here) is not
    # affected. 0: off (docs/what-was-tried.md, round 14)
    ear_second_opinion: float = 0.0
    # wherever Whisper writes a turn down (the turns the ears are unsure of, people's voices
    # and espeak voices Whisper garbles, and the second opinion's): it hears it a second time
    # told the ear's words as what was said before it (its previous text, written as a
    # question: Whisper follows it where the audio leaves it unsure), and those words are read
    # where they fit the ear's hearing of the turn better than its own. A person's words fit
    # the ear's hearing badly either way and stay Whisper's own (docs/what-was-tried.md, round
    # 20). Whisper's only, with the ear's words (`ear_words`)
    ear_words_prompt: bool = False

    def __post_init__(self) -> None:
        if self.lm not in ("domain", "general"):
            raise ValueError(f"hearing lm must be 'domain' or 'general', got {self.lm!r}")
        if not 0.0 <= self.ear_confidence <= 1.0:
            raise ValueError(f"ear_confidence must be in [0, 1], got {self.ear_confidence}")
        if not all(isinstance(t, str) for t in (*self.corpus, *self.known)):
            raise ValueError("the hearing's corpus and known questions must be strings")
        check_int("known_shortlist", self.known_shortlist, 1)
        if not self.known_misfit >= 0.0:
            raise ValueError(f"known_misfit must be >= 0, got {self.known_misfit}")
        check_int("ear_words_beam", self.ear_words_beam, 1)
        check_number("ear_words_lm_weight", self.ear_words_lm_weight)
        check_number("ear_words_score", self.ear_words_score)
        if not isinstance(self.ear_check, bool):
            raise ValueError(f"ear_check must be true or false, got {self.ear_check!r}")
        if self.ear_check and not self.ear:
            raise ValueError("ear_check is a second ear: the hearing needs its first (ear)")
        if not isinstance(self.ear_words, bool):
            raise ValueError(f"ear_words must be true or false, got {self.ear_words!r}")
        if self.ear_words and not any(t.strip() for t in self.known):
            raise ValueError("ear_words reads the ear's letters as known questions: give known")
        if self.recognizer not in ("pocketsphinx", "whisper"):
            raise ValueError(
                f"recognizer must be 'pocketsphinx' or 'whisper', got {self.recognizer!r}"
            )
        if not isinstance(self.whisper_model, str):
            raise ValueError(f"whisper_model must be a path, got {self.whisper_model!r}")
        check_int("whisper_beam", self.whisper_beam, 1)
        check_number("whisper_alternatives", self.whisper_alternatives)
        if self.whisper_alternatives < 0:
            raise ValueError(f"whisper_alternatives must be >= 0, got {self.whisper_alternatives}")
        check_number("ear_second_opinion", self.ear_second_opinion)
        if self.ear_second_opinion < 0:
            raise ValueError(f"ear_second_opinion must be >= 0, got {self.ear_second_opinion}")
        if self.ear_second_opinion > 0 and not self.ear:
            raise ValueError("ear_second_opinion is a second opinion on the ear's words: give ear")
        if not isinstance(self.ear_words_prompt, bool):
            raise ValueError(
                f"ear_words_prompt must be true or false, got {self.ear_words_prompt!r}"
            )
        if (
            self.recognizer == "pocketsphinx"
            and self.lm == "domain"
            and not any(t.strip() for t in self.corpus)
        ):
            raise ValueError("a domain hearing needs a non-empty corpus")

    def save(self, directory: str | Path) -> None:
        data = asdict(self) | {"corpus": list(self.corpus), "known": list(self.known)}
        (Path(directory) / HEARING_CONFIG_NAME).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> HearingConfig | None:
        def build(data: dict) -> HearingConfig:
            lists = {k: texts(data.get(k, [])) for k in ("corpus", "known")}
            return cls(**(data | lists))

        return load_config(directory, HEARING_CONFIG_NAME, build)


def known_targets(known: Sequence[str]) -> tuple[list[str], list[torch.Tensor]]:
    """Known questions as the ear would write them (plain words, once each, none without a
    letter it writes) and as its CTC targets (`Ear.misfit`)."""
    plain = list(dict.fromkeys(p for p in map(plain_words, known) if encode_text(p)))
    return plain, [torch.tensor(encode_text(p)) for p in plain]


def word_search(config: HearingConfig, texts: Sequence[str]) -> WordSearch:
    """The search that reads the ear's letters as words of `texts`, with the config's weights
    and beam (`ear_words_*`)."""
    return WordSearch(
        texts,
        lm_weight=config.ear_words_lm_weight,
        word_score=config.ear_words_score,
        beam=config.ear_words_beam,
    )


def recognizer(
    config: HearingConfig, directory: str | Path | None = None
) -> Recognizer | WhisperRecognizer:
    """The recognizer that writes down the turns the ear leaves (`HearingConfig.recognizer`);
    a relative `whisper_model` is read in `directory` (default: the working directory)."""
    if config.recognizer == "whisper":
        path = None
        if config.whisper_model:
            path = Path(config.whisper_model)
            if not path.is_absolute() and directory is not None:
                path = Path(directory) / path
        return WhisperRecognizer(path, beam=config.whisper_beam)
    return Recognizer(config.lm, config.corpus if config.lm == "domain" else None)


def _as_asked(words: str) -> str:
    """The ear's words as Whisper is told them: a question in sentence case. Whisper writes on
    in the case and punctuation of its previous text; told the ear's bare lower-case words it
    wrote two of the 14 recordings of people differently (a LibriVox sentence's "And" dropped),
    told them so, none (docs/what-was-tried.md, round 20)."""
    return f"{words[:1].upper()}{words[1:]}?"


def _fits_best(misfits: Sequence[float | None]) -> int:
    """Which of several texts fits the ear's hearing best, by their misfits (`Hearing._misfit`;
    None for a text with no letter, never chosen over one with): the first on a tie, and the
    first where none has a letter."""
    best = 0
    for i, misfit in enumerate(misfits):
        if misfit is not None and (misfits[best] is None or misfit < misfits[best]):
            best = i
    return best


@dataclass(frozen=True)
class Heard:
    """A spoken turn's words and what wrote them down: "known" (the ear heard a question the
    Conductor knows), "ear" (its letters, read as words where `ear_words`), "pocketsphinx" or
    "whisper" (the recognizer); "" where no word was heard. `alternatives`: the recognizer's
    other ways of hearing it, nearly as likely (`HearingConfig.whisper_alternatives`)."""

    words: str
    by: str
    alternatives: tuple[str, ...] = ()


class Hearing:
    """Writes down the words of spoken turns (thread-safe; blocking: call from a worker)."""

    def __init__(
        self,
        config: HearingConfig,
        ear: Ear | None = None,
        directory: str | Path | None = None,
        check_ear: Ear | None = None,
    ) -> None:
        """`directory`: where the hearing is saved (a relative `whisper_model` is read there);
        `check_ear`: the second ear of `config.ear_check`."""
        if config.ear and ear is None:
            raise ValueError("this hearing needs its ear (saved beside the Thinker in ear/)")
        if config.ear_check and check_ear is None:
            raise ValueError(f"this hearing needs its second ear (in {EAR_CHECK_DIR}/)")
        self.config = config
        self.recognizer = recognizer(config, directory)
        self.ear = ear.eval() if ear is not None and config.ear else None
        self.check_ear = check_ear.eval() if check_ear is not None and config.ear_check else None
        self._known, self._known_ids = known_targets(config.known)
        self.word_search = None
        if self.ear is not None and config.ear_words:
            self.word_search = word_search(config, config.known)

    @classmethod
    def load(cls, directory: str | Path) -> Hearing | None:
        """The hearing saved beside a Thinker (with its ear), or None if it has none."""
        config = HearingConfig.load(directory)
        if config is None:
            return None
        ear = Ear.from_pretrained(Path(directory) / EAR_DIR) if config.ear else None
        check = Ear.from_pretrained(Path(directory) / EAR_CHECK_DIR) if config.ear_check else None
        return cls(config, ear, directory, check)

    def use_whisper(self, model_dir: str | Path) -> None:
        """Write down the turns the ear leaves with Whisper from `model_dir` (a local
        CTranslate2 directory, e.g. a larger Whisper than the wheel's); the ear, its known
        questions and word search stay as they are."""
        path = str(Path(model_dir).resolve())
        config = replace(self.config, recognizer="whisper", whisper_model=path)
        self.recognizer = recognizer(config)  # (raises ValueError naming a directory it is not)
        self.config = config

    def save(self, directory: str | Path) -> None:
        self.config.save(directory)
        if self.ear is not None:
            self.ear.save_pretrained(Path(directory) / EAR_DIR)
        if self.check_ear is not None:
            self.check_ear.save_pretrained(Path(directory) / EAR_CHECK_DIR)

    def transcribe(self, turn: UserTurn) -> str:
        """The words heard in the turn's audio ('' without audio or when none are heard): the
        ear's letters where it is sure of them (or the recognizer's second opinion on them),
        else the recognizer's words."""
        return self.heard(turn).words

    def heard(self, turn: UserTurn) -> Heard:
        """`transcribe`, saying by what the words were written down."""
        if turn.audio is None or turn.audio.size == 0:
            return Heard("", "")
        audio = np.asarray(turn.audio, dtype=np.float32)
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
        if rms < SILENCE_RMS:  # (NaN is not below it: the recognizer names that error)
            return Heard("", "")
        if self.ear is not None:
            logp = self.ear.listen(audio, turn.audio_sample_rate)
            letters, sure = self.ear.letters(logp)
            known = self._known_heard(logp, letters)
            if known is not None:
                return Heard(known, "known")
            if letters and self.check_ear is not None and sure >= self.config.ear_confidence:
                sure = min(sure, self.check_ear.hear(audio, turn.audio_sample_rate)[1])
            log.debug("ear heard %r (sure %.2f)", letters, sure)
            if letters and sure >= self.config.ear_confidence:
                words = self.word_search.words(logp) if self.word_search is not None else ""
                log.debug("ear's words %r", words)
                return self._second_opinion(audio, turn.audio_sample_rate, logp, words or letters)
        else:
            logp = None
        return self._recognized(audio, turn.audio_sample_rate, logp)

    def _recognized(self, audio: np.ndarray, sample_rate: int, logp: torch.Tensor | None) -> Heard:
        """The recognizer's words for a turn the ears leave (`logp`: the ear's hearing of it,
        where it has one), with Whisper's near alternatives (`whisper_alternatives`), told the
        ear's words first where `ear_words_prompt`."""
        config = self.config
        whisper = config.recognizer == "whisper"
        told = ""
        if whisper and config.ear_words_prompt and self.word_search is not None:
            told = self.word_search.words(logp) if logp is not None else ""
        if not whisper or not (config.whisper_alternatives > 0 or told):
            words = self.recognizer.transcribe(audio, sample_rate)
            return Heard(words, config.recognizer if words else "")
        prompts = ("", _as_asked(told)) if told else ("",)
        ways = self.recognizer.heard_after(audio, sample_rate, prompts)  # (one per prompt)
        hypotheses = ways[0]
        if not hypotheses:  # (no speech: nor are words made up after a prompt)
            return Heard("", "")
        if len(ways) > 1 and ways[1]:
            misfits = [self._misfit(logp, w[0].words) for w in ways]
            log.debug("Whisper heard %r, told the ear's %r: %r (misfits %s)",
                      ways[0][0].words, told, ways[1][0].words, misfits)  # fmt: skip
            hypotheses = ways[_fits_best(misfits)]
        best = hypotheses[0]
        others = ()
        if config.whisper_alternatives > 0:
            within = best.score - config.whisper_alternatives
            others = tuple(h.words for h in hypotheses[1:] if h.score >= within)
        return Heard(best.words, "whisper", others)

    def _second_opinion(
        self, audio: np.ndarray, sample_rate: int, logp: torch.Tensor, words: str
    ) -> Heard:
        """The ear's `words`, or the recognizer's where the ear's fit its hearing worse than
        `ear_second_opinion` and the recognizer's fit it better (Whisper's own words, or, where
        `ear_words_prompt`, those it writes told the ear's: whichever fits best)."""
        limit = self.config.ear_second_opinion
        own = self._misfit(logp, words) if limit > 0 else None
        if own is None or own <= limit:
            return Heard(words, "ear")
        if self.config.ear_words_prompt and self.config.recognizer == "whisper":
            ways = self.recognizer.heard_after(audio, sample_rate, ("", _as_asked(words)))
            others = [w[0].words for w in ways if w]
        else:
            others = [self.recognizer.transcribe(audio, sample_rate)]
        misfits = [own, *(self._misfit(logp, other) for other in others)]
        log.debug("ear's words %r, recognizer's %r (misfits %s)", words, others, misfits)
        best = _fits_best(misfits)
        return Heard(words, "ear") if best == 0 else Heard(others[best - 1], self.config.recognizer)

    def _misfit(self, logp: torch.Tensor, text: str) -> float | None:
        """How badly `text` fits the ear's hearing (`Ear.misfit`); None for no letter."""
        ids = encode_text(plain_words(text))
        return float(self.ear.misfit(logp, [torch.tensor(ids)])[0]) if ids else None

    def _known_heard(self, logp: torch.Tensor | None, letters: str) -> str | None:
        """The known question (plain words) that fits the turn's audio, if one does."""
        if logp is None or not self._known:
            return None
        shortlist = [
            int(i)
            for _, _, i in process.extract(
                letters, self._known, scorer=fuzz.ratio, limit=self.config.known_shortlist
            )
        ]
        misfit = self.ear.misfit(logp, [self._known_ids[i] for i in shortlist])
        best = int(misfit.argmin())
        if float(misfit[best]) > self.config.known_misfit:
            return None
        question = self._known[shortlist[best]]
        log.debug("ear heard the known %r (misfit %.2f)", question, float(misfit[best]))
        return question

    def apply(self, turn: UserTurn) -> UserTurn:
        """The turn as the Thinker reads it: a spoken turn without text gets its transcript
        as text (and loses its audio unless `keep_audio`); typed turns, turns that already
        carry text and turns in which no word is heard come back as they are."""
        return self.applied(turn)[0]

    def applied(self, turn: UserTurn) -> tuple[UserTurn, tuple[str, ...]]:
        """`apply`, with the recognizer's other ways of hearing the turn (`Heard.
        alternatives`; none for a turn that was not written down)."""
        if turn.text.strip() or turn.audio is None or turn.audio.size == 0:
            return turn, ()
        check_turn(turn)  # the Thinker's own checks, before its audio is replaced
        heard = self.heard(turn)
        log.debug("heard %r (or %r)", heard.words, heard.alternatives)
        if not heard.words:
            return turn, ()
        audio = turn.audio if self.config.keep_audio else None
        return replace(turn, text=heard.words, audio=audio), heard.alternatives
