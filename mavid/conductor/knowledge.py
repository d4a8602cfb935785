"""The tiny Conductor's knowledge: a question it was never taught read as the known one nearest.

A Thinker trained from scratch on ~6 paraphrases per intent knows those paraphrases by heart
(99 % answered) and little beyond them (issue 7: 48 % of held-out questions typed). Frozen
word vectors know more: "I hurt my hand" lies near the first-aid questions. So a turn whose
words are not (nearly) a question of the knowledge base reaches the Thinker as the known
question nearest to them, which it answers reliably; a turn that is one, typos and all, keeps
its own words (the Thinker reads typed forms better than the vectors do). Camera frames and
audio are kept either way: a visual question still needs the camera.

The knowledge base (`knowledge.json` beside the Thinker): entries, each the questions it
answers as the Thinker was taught them, its answers (they help find it, never shown) and other
ways of asking (`also`: they find it, never handed to the Thinker). A sentence's vector: the
sum of its words' WordLlama vectors (the table of `mavid.conductor.word_reading`, shipped in
the `wordllama` wheel) weighted by their inverse frequency over the base, normalised; a word
the base does not have but nearly spells (a dropped letter) is read as that word first
(`rapidfuzz`). A turn of common words is read by a logistic regression of the entries over
their texts' vectors (`scikit-learn`, fitted when the base is built). Other turns (the ear's
letters, `mavid.conductor.ear`, are often no words) by each text's match: that cosine, mixed
with how alike the two are spelt, letter by letter (rapidfuzz's ratio), as much as the text's
words are no English words (`spelling_weight` times their share); so a question is still found
in a transcript too garbled for whole words. There an entry's score is its texts' mean cosine
mixed with the likeness of its best-spelt few. The question read is the best-matching of the
best entry's own questions.

Tried first, and dropped (issue 7): the nearest questions appended to the words as notes, the
turn's own question left out of them in training; the Thinker, knowing its training
questions by heart, learnt to ignore the notes (held-out questions 48 % -> 38-45 %).
"""

from __future__ import annotations

import json
import logging
import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from mavid.asr import cmu_words
from mavid.conductor.format import plain_words, standard_characters
from mavid.conductor.saved_config import check_int, load_config, texts
from mavid.conductor.word_reading import WORD, common_words, word_table
from mavid.interfaces import UserTurn

log = logging.getLogger(__name__)

__all__ = [
    "KNOWLEDGE_CONFIG_NAME",
    "Knowledge",
    "KnowledgeConfig",
    "KnowledgeEntry",
    "taken_for_elsewhere",
]

KNOWLEDGE_CONFIG_NAME = "knowledge.json"
MAX_QUERY_CHARS = 2_000  # a turn's text beyond this is not read (hostile input)
# shorter unknown words are not respelt ("th" is no typo of "the" to trust; "wha" of "what"
# is: known questions typed with a dropped letter, 10-fold, 87.4 % -> 88.5 % found)
MIN_FIXED_LEN = 3


@dataclass(frozen=True)
class KnowledgeEntry:
    # how people ask, as the Thinker knows (the one read: the best-matching)
    questions: tuple[str, ...]
    answers: tuple[str, ...] = ()  # found by, never shown
    # other ways of asking, found by like the questions but never handed to the Thinker (it
    # was not trained on them): a turn that matches one is read as the entry's question
    # nearest to it
    also: tuple[str, ...] = ()
    # a turn whose likeliest entry this is is never taken for one from elsewhere (`Knowledge.
    # from_elsewhere`): better this entry's answer to a question from elsewhere than the
    # elsewhere reply to someone unwell ("I have a fever" reads like chit-chat)
    urgent: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.urgent, bool):
            raise ValueError(
                f"a knowledge entry's urgent must be true or false, got {self.urgent!r}"
            )
        for name in ("questions", "answers", "also"):
            given = getattr(self, name)
            if not isinstance(given, tuple) or not all(isinstance(t, str) for t in given):
                raise ValueError(f"a knowledge entry's {name} must be strings, got {given!r}")
        if not any(q.strip() for q in self.questions):
            raise ValueError("a knowledge entry needs at least one non-empty question")


@dataclass(frozen=True)
class KnowledgeConfig:
    entries: tuple[KnowledgeEntry, ...]
    # a turn whose best-matching known question scores at least this (cosine) keeps its own
    # words (above 1: every turn with words is read as its nearest known question)
    keep_words_above: float = 0.9
    # a word the base lacks is read as the base's word it spells this like (rapidfuzz ratio)
    respell_above: float = 80.0
    # a text's match: (1 - w) * the cosine of the word vectors + w * the letters' likeness
    # (rapidfuzz ratio / 100, on lower-case words), w = spelling_weight * the share of the
    # text's words the CMU dictionary lacks
    spelling_weight: float = 0.0
    # an entry's spelling likeness: the mean of its best this many texts' (its word vectors'
    # cosine: the mean of all its texts'). With dozens of ways of asking an entry, the mean of
    # every text's spelling drowns the one spelt like the turn (docs/what-was-tried.md, round 9)
    spelling_best: int = 3
    # a text whose words are all among the `classifier_words` commonest English words (of
    # three letters or more, "a" and "i") or the base's: its entry is the one a logistic
    # regression over the base's sentence vectors (every text labelled with its entry, inverse
    # regularisation `classifier_c`) finds likeliest; other texts (the ear's letters: "i fel
    # di se"), and every text at 0, by the mean cosine, the classifier being too sure of
    # garbled vectors (docs/what-was-tried.md, round 9)
    classifier_c: float = 10.0
    classifier_words: int = 6000
    # the classifier also reads the text's letters and words as TF-IDF of character 2-4-grams
    # (within words) and of words and word pairs, at this weight beside the sentence vector
    # (0: the vector alone). The domain's ways of asking in 10 folds, each left out, of it the
    # texts no other is spelt like (rapidfuzz ratio >= 75) or means nearly (cosine >= 0.9), as
    # the test's questions were kept apart: 85.0 % -> 93.2 % found at weight 2 (typed 84.2 %
    # -> 92.2 %; weight 1: 92.4 %) (docs/what-was-tried.md, round 13)
    classifier_ngrams: float = 0.0
    # the classifier reads every text, its words known or not: reading n-grams, it finds typed
    # texts with dropped letters better than the mean cosine does (the same 10 folds, typed:
    # 86.1 % -> 92.2 %, clean 90.5 % -> 93.2 %); the ear's greedy letters, worse (README,
    # round 13), but a hearing that reads them as words (`HearingConfig.ear_words`) hands
    # them on only where its word search finds none
    classify_all: bool = False
    # the text handed to the Thinker (the turn's own words, or the known question) in plain
    # words (`format.plain_words`: lower case, no punctuation), as its typed turns and
    # transcripts were in training: the tiny Thinker answers all 174 known questions so, 11
    # wrong as written ("Goodbye.")
    plain: bool = True
    table: str = "wordllama-l2-supercat-256"
    # a recognizer's other way of hearing a turn (`Heard.alternatives`) is read in place of its
    # best words where it matches a known question better and at least this well: chosen as
    # the lowest at which none of 14 recordings of people (playing cards, LibriVox, digits)
    # has its words changed ("ten of clubs" -> "ten of close" at 0.60); Whisper alone on the
    # val split's spoken turns is then right 36 -> 40 times of 61 (docs/what-was-tried.md, round 13)
    alternative_above: float = 0.65
    # what people say that no entry answers (trivia, chit-chat, requests: "Who wrote Romeo and
    # Juliet?"), the classifier's one more class, each text weighing `elsewhere_weight` of one
    # of the base's; a turn the classifier finds at least `elsewhere_above` likely to be one is
    # from elsewhere, and answered with `elsewhere_reply` (and `elsewhere_motion`) instead of
    # the nearest entry's answer. The domain's: a voice assistant's requests and the
    # chatterbot-corpus lines, weight 0.3, above 0.9: 1 of 864 ways of asking left out of the
    # base taken for elsewhere, 53 % of 60 questions from elsewhere caught
    # (docs/what-was-tried.md, round 19). A text from elsewhere whose
    # sentence vector's cosine to one of the base's texts reaches `elsewhere_apart` is left out
    # of the class: the base has it ("My internet is not working." is the wifi question)
    elsewhere: tuple[str, ...] = ()
    elsewhere_weight: float = 0.3
    elsewhere_above: float = 0.8
    elsewhere_apart: float = 0.7
    elsewhere_reply: str = ""
    elsewhere_motion: str = "tilt"

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("a knowledge base needs at least one entry")
        if not -1.0 <= self.keep_words_above <= 2.0:
            raise ValueError(f"keep_words_above must be in [-1, 2], got {self.keep_words_above}")
        if not 0.0 <= self.respell_above <= 100.0:
            raise ValueError(f"respell_above must be in [0, 100], got {self.respell_above}")
        if not 0.0 <= self.spelling_weight <= 1.0:
            raise ValueError(f"spelling_weight must be in [0, 1], got {self.spelling_weight}")
        if not 0.0 <= self.classifier_c < math.inf:
            raise ValueError(f"classifier_c must be >= 0 and finite, got {self.classifier_c}")
        check_int("classifier_words", self.classifier_words, 0)
        if not 0.0 <= self.classifier_ngrams < math.inf:
            raise ValueError(
                f"classifier_ngrams must be >= 0 and finite, got {self.classifier_ngrams}"
            )
        check_int("spelling_best", self.spelling_best, 1)
        if not isinstance(self.plain, bool):
            raise ValueError(f"plain must be true or false, got {self.plain!r}")
        if not isinstance(self.classify_all, bool):
            raise ValueError(f"classify_all must be true or false, got {self.classify_all!r}")
        if not -1.0 <= self.alternative_above <= 2.0:
            raise ValueError(f"alternative_above must be in [-1, 2], got {self.alternative_above}")
        if not isinstance(self.elsewhere, tuple) or not all(
            isinstance(t, str) for t in self.elsewhere
        ):
            raise ValueError(f"elsewhere must be texts, got {self.elsewhere!r}")
        if self.elsewhere and self.classifier_c <= 0:
            raise ValueError("texts from elsewhere need the classifier (classifier_c > 0)")
        if not 0.0 < self.elsewhere_weight < math.inf:
            raise ValueError(
                f"elsewhere_weight must be > 0 and finite, got {self.elsewhere_weight}"
            )
        if not 0.0 <= self.elsewhere_above <= 1.0:
            raise ValueError(f"elsewhere_above must be in [0, 1], got {self.elsewhere_above}")
        if not -1.0 <= self.elsewhere_apart <= 2.0:
            raise ValueError(f"elsewhere_apart must be in [-1, 2], got {self.elsewhere_apart}")
        for name in ("elsewhere_reply", "elsewhere_motion"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.elsewhere and not self.elsewhere_reply.strip():
            raise ValueError("texts from elsewhere need an elsewhere_reply to answer them with")

    def asked(self) -> tuple[str, ...]:
        """Every way of asking the base holds (its entries' questions and `also`), once each:
        the texts a hearing checks a spoken turn against first."""
        return tuple(dict.fromkeys(q for e in self.entries for q in (*e.questions, *e.also)))

    def save(self, directory: str | Path) -> None:
        data = asdict(self)
        (Path(directory) / KNOWLEDGE_CONFIG_NAME).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeConfig | None:
        def build(data: dict) -> KnowledgeConfig:
            entries = tuple(
                KnowledgeEntry(
                    texts(e["questions"]),
                    texts(e.get("answers", [])),
                    texts(e.get("also", [])),
                    e.get("urgent", False),
                )
                for e in data["entries"]
            )
            elsewhere = texts(data.get("elsewhere", []))
            return cls(**(data | {"entries": entries, "elsewhere": elsewhere}))

        return load_config(directory, KNOWLEDGE_CONFIG_NAME, build)


def _as_typed(text: str) -> list[str]:
    """Lower-case words without apostrophes ("Can't", "Can’t" and the typed "cant" are one
    word), in plain characters (`standard_characters`)."""
    return [w.replace("'", "") for w in WORD.findall(standard_characters(text).lower())]


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    """`_as_typed`'s words without accents too ("café" and "cafe" are one word: the ear and the
    recognizers write no accents, and people seldom type them)."""
    return _as_typed(_unaccented(text))


def _query_words(text: str) -> list[str]:
    return _words(text[:MAX_QUERY_CHARS])


@cache
def english_words() -> frozenset[str]:
    """The CMU pronouncing dictionary's words (shipped with PocketSphinx), apostrophes
    dropped."""
    return frozenset(w.replace("'", "") for w in cmu_words())


def _share_of_non_words(words: list[str]) -> float:
    if not words:
        return 0.0
    known = english_words()
    return sum(w not in known for w in words) / len(words)


def _ngram_features(spelt: Sequence[str]):
    """TF-IDF of character 2-4-grams within words, and of words and word pairs, fitted on
    the base's texts (as `_query_words` spells them)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            ("letters", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)),
            (
                "words",
                TfidfVectorizer(
                    analyzer="word",
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    token_pattern=r"\S+",  # (already split into words, apostrophes dropped)
                ),
            ),
        ]
    ).fit(spelt)


class Knowledge:
    """Finds the known question a turn asks (thread-safe: read-only after construction)."""

    @staticmethod
    def shared(config: KnowledgeConfig) -> Knowledge:
        """The knowledge base of `config`, built once per process (its classifier takes ~1.5 s
        to fit) and shared by every Conductor loaded with an equal config: read-only, so
        sessions can share it as they share the weights."""
        return _shared_knowledge(config)

    def __init__(self, config: KnowledgeConfig) -> None:
        self.config = config
        self.table = word_table(config.table)
        self._rows = [  # (entry, text, is a question the Thinker knows)
            (k, text, text in e.questions)
            for k, e in enumerate(config.entries)
            for text in dict.fromkeys((*e.questions, *e.also, *e.answers))
            if text.strip()
        ]
        df = Counter(w for _, text, _ in self._rows for w in set(_words(text)))
        # words the base writes only with their accents, which the Thinker therefore knows only
        # so: a turn that has one unaccented is handed the known question it matches
        as_written = {w for _, text, _ in self._rows for w in _as_typed(text)}
        self._accent_dropped = {_unaccented(w) for w in as_written} - as_written
        n = len(self._rows)
        self._idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        # a word no text has weighs as the rarest the base has (not more: "hello from the
        # keyboard" was read by "keyboard" alone as a question about a thing shown)
        self._unseen_idf = max(self._idf.values(), default=1.0)
        self._vocab = sorted(w for w in self._idf if len(w) >= MIN_FIXED_LEN)
        self._matrix = np.stack([self.vector(text) for _, text, _ in self._rows])
        entry = np.array([k for k, _, _ in self._rows])
        asked = np.array([is_question for _, _, is_question in self._rows])
        self._entry_rows = [np.flatnonzero(entry == k) for k in range(len(config.entries))]
        self._entry_questions = [
            np.flatnonzero((entry == k) & asked) for k in range(len(config.entries))
        ]
        self._spelt = [" ".join(_query_words(text)) for _, text, _ in self._rows]
        self._classifier = None
        self._ngrams = None
        if config.classifier_c > 0 and len(config.entries) > 1:
            # (imported here: 0.7 s, and a Thinker with no knowledge base never needs it)
            from sklearn.linear_model import LogisticRegression

            if config.classifier_ngrams > 0 and any(self._spelt):  # (a base of no words: none)
                self._ngrams = _ngram_features(self._spelt)
            features = self._features(self._matrix, self._spelt)
            labels, weights = entry, np.ones(len(entry))
            elsewhere, vectors = self._elsewhere_apart()
            if elsewhere:  # one more class: what no entry answers
                spelt = [" ".join(_query_words(text)) for text in elsewhere]
                features = _stacked(features, self._features(vectors, spelt))
                n = len(elsewhere)
                labels = np.r_[entry, np.full(n, len(config.entries))]
                weights = np.r_[weights, np.full(n, config.elsewhere_weight)]
            self._classifier = LogisticRegression(C=config.classifier_c, max_iter=5_000)
            self._classifier.fit(features, labels, sample_weight=weights)
        # (the commonest tokens include pieces such as "se" and "di", which the ear writes)
        common = (w for w in common_words(config.classifier_words) if len(w) > 2 or w in ("a", "i"))
        self._words = frozenset(common) | self._idf.keys()

    def _elsewhere_apart(self) -> tuple[list[str], np.ndarray]:
        """The texts from elsewhere none of the base's texts nearly is (`elsewhere_apart`), and
        their (n, dim) sentence vectors."""
        if not self.config.elsewhere:
            return [], np.zeros((0, self.table.dim), np.float32)
        vectors = np.stack([self.vector(text) for text in self.config.elsewhere])
        apart = (vectors @ self._matrix.T).max(axis=1) < self.config.elsewhere_apart
        kept = [t for t, keep in zip(self.config.elsewhere, apart, strict=True) if keep]
        return kept, vectors[apart]

    def _features(self, vectors: np.ndarray, spelt: Sequence[str]):
        """The classifier's input: the (n, dim) sentence vectors, beside the texts' weighted
        n-gram TF-IDF where `classifier_ngrams` (a sparse matrix then)."""
        if self._ngrams is None:
            return vectors.astype(np.float64)
        from scipy.sparse import csr_matrix, hstack

        ngrams = self.config.classifier_ngrams * self._ngrams.transform(spelt)
        return hstack([csr_matrix(vectors.astype(np.float64)), ngrams]).tocsr()

    def _respelt(self, word: str) -> str:
        if word in self._idf or len(word) < MIN_FIXED_LEN or not self._vocab:
            return word
        best = process.extractOne(
            word, self._vocab, scorer=fuzz.ratio, score_cutoff=self.config.respell_above
        )
        return best[0] if best is not None else word

    def vector(self, text: str) -> np.ndarray:
        """The (dim,) unit vector of `text` (zeros when it has no word)."""
        return self._vector(_query_words(text))

    def _vector(self, words: list[str]) -> np.ndarray:
        v = np.zeros(self.table.dim, np.float32)
        for w in words:
            w = self._respelt(w)
            v += self._idf.get(w, self._unseen_idf) * self.table.word(w)
        norm = float(np.linalg.norm(v))
        return v / norm if norm > 0 else v

    def nearest(self, text: str) -> tuple[str, float] | None:
        """The best-matching question of the entry nearest to `text`, and how well the best
        known question matches `text` (cosine, mixed with spelling); None when `text` has no
        word."""
        words = _query_words(text)
        query = self._vector(words)
        if not query.any():
            return None
        cosine = self._matrix @ query
        w = self.config.spelling_weight * _share_of_non_words(words)
        alike = (
            process.cdist([" ".join(words)], self._spelt, scorer=fuzz.ratio)[0] / 100.0
            if w > 0
            else np.zeros_like(cosine)
        )
        sims = (1.0 - w) * cosine + w * alike  # each text's match
        likely = None
        if self._classifier is not None and (
            self.config.classify_all or all(word in self._words for word in words)
        ):
            likely = self._likely(words, query)
        best, best_score = -1, -math.inf
        question: dict[int, tuple[float, str]] = {}
        for k, rows in enumerate(self._entry_rows):
            # an entry's score: how likely the classifier finds it, or else the mean cosine of
            # its texts (each known question left out in turn, the others found it 77 % right,
            # against 62 % by its best text alone) with the mean likeness of its best-spelt few
            if likely is not None:
                score = float(likely[k])
            else:
                score = (1.0 - w) * float(cosine[rows].mean())
                if w > 0:
                    top = np.sort(alike[rows])[-self.config.spelling_best :]
                    score += w * float(top.mean())
            if score > best_score:
                best, best_score = k, score
            asked = self._entry_questions[k]
            i = asked[int(np.argmax(sims[asked]))]
            question[k] = (float(sims[i]), self._rows[i][1])
        return question[best][1], max(q for q, _ in question.values())

    def _likely(self, words: list[str], query: np.ndarray) -> np.ndarray:
        """The classifier's probability of each entry (then of elsewhere, where the base has
        texts from elsewhere) for a text of `words` whose vector is `query`."""
        features = self._features(query[None], [" ".join(words)])
        return self._classifier.predict_proba(features)[0]

    def elsewhere_reading(self, text: str) -> tuple[float, bool]:
        """How likely the classifier finds `text` to be what people say that no entry answers
        (`KnowledgeConfig.elsewhere`), and whether the entry it finds likeliest of the base's
        own is `urgent`: (0, False) where the base has no such texts, or `text` no word."""
        if not self.config.elsewhere or self._classifier is None or not text.strip():
            return 0.0, False
        words = _query_words(text)
        query = self._vector(words)
        if not query.any():
            return 0.0, False
        likely = self._likely(words, query)
        if likely.size <= len(self.config.entries):  # (every text from elsewhere left out)
            return 0.0, False
        entry = self.config.entries[int(np.argmax(likely[:-1]))]
        return float(likely[-1]), entry.urgent

    def from_elsewhere(self, text: str) -> bool:
        """Whether `text` is what people say that no entry answers: the classifier finds it at
        least `elsewhere_above` likely to be, and the entry it finds likeliest of the base's own
        is not `urgent` (never where the base has no texts from elsewhere)."""
        chance, urgent = self.elsewhere_reading(text)
        if taken_for_elsewhere(chance, urgent, self.config.elsewhere_above):
            log.debug("%r is from elsewhere (%.2f)", text, chance)
            return True
        return False

    def lookup(self, text: str) -> str | None:
        """The known question (as written) that `text` is read as; None where it keeps its own
        words: (nearly) a known question, none of them a word the base writes only with an
        accent ("cafe"), or no word."""
        found = self.nearest(text) if text.strip() else None
        if found is None:
            return None
        typed = _as_typed(text[:MAX_QUERY_CHARS])
        if found[1] >= self.config.keep_words_above and self._accent_dropped.isdisjoint(typed):
            return None
        log.debug("%r read as the known question %r (best match %.2f)", text, *found)
        return found[0]

    def likeliest(self, words: str, alternatives: Sequence[str]) -> str:
        """Of a recognizer's best `words` and its other ways of hearing the same turn, the one
        to read: the alternative that matches a known question best, where it matches better
        than `words` and at least `alternative_above`; else `words`."""
        if not alternatives:
            return words
        found = self.nearest(words) if words.strip() else None
        chosen, best = words, found[1] if found is not None else -math.inf
        for text in alternatives:
            match = self.nearest(text) if text.strip() else None
            if match is not None and match[1] > best and match[1] >= self.config.alternative_above:
                chosen, best = text, match[1]
        if chosen != words:
            log.debug("heard %r read as its alternative %r (match %.2f)", words, chosen, best)
        return chosen

    def as_read(self, text: str) -> str:
        """Words (a turn's or a known question) as the Thinker is handed them."""
        return plain_words(text) if self.config.plain and text.strip() else text

    def understand(self, turn: UserTurn) -> tuple[UserTurn, str | None]:
        """The turn as the Thinker reads it (`read`), and the known question (as written) it
        was read as, None where it kept its own words."""
        question = self.lookup(turn.text)
        text = self.as_read(turn.text if question is None else question)
        return (turn if text == turn.text else replace(turn, text=text)), question

    def read(self, turn: UserTurn) -> UserTurn:
        """The turn as the Thinker reads it: its own words when they are (nearly) a known
        question or have no word, else the known question nearest to them."""
        return self.understand(turn)[0]


def taken_for_elsewhere(chance: float, urgent: bool, above: float) -> bool:
    """Whether a turn `Knowledge.elsewhere_reading` read as (`chance`, `urgent`) is taken for
    one from elsewhere at `elsewhere_above` = `above`."""
    return chance >= above and not urgent


def _stacked(a, b):
    """Rows of `a` then of `b`: both dense arrays, or both sparse matrices."""
    if isinstance(a, np.ndarray):
        return np.vstack([a, b])
    from scipy.sparse import vstack

    return vstack([a, b]).tocsr()


@lru_cache(maxsize=4)
def _shared_knowledge(config: KnowledgeConfig) -> Knowledge:
    return Knowledge(config)
