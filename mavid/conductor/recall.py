"""The tiny Conductor's recall: the known question nearest in meaning to what the visitor said.

A Thinker trained from scratch on a few paraphrases per question cannot know that "I hurt my
hand" asks for first aid (issue 7: 52 % of held-out typed questions understood). WordLlama (a
pretrained word-embedding model whose weights ship inside its wheel: no download) places
sentences by meaning; the nearest of the questions the Conductor was trained on is appended to
the turn's text, and the Thinker, trained with such hints, weighs the hint against its own
reading. In training the turn's own question is left out of the search, so the hint is as
often wrong as it will be for questions never seen. Saved beside the Thinker (`recall.json`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mavid.interfaces import UserTurn

__all__ = ["RECALL_CONFIG_NAME", "RECALL_SEPARATOR", "Recall", "RecallConfig"]

RECALL_CONFIG_NAME = "recall.json"
RECALL_SEPARATOR = " | "  # between the turn's own words and the recalled question


@dataclass(frozen=True)
class RecallConfig:
    """The questions the Conductor knows (saved beside the Thinker trained with their hints)."""

    questions: tuple[str, ...]
    # a hint only when the nearest question is at least this similar (cosine); below, the
    # turn is far from everything known and a hint would only mislead
    min_similarity: float = 0.2

    def __post_init__(self) -> None:
        if not any(q.strip() for q in self.questions):
            raise ValueError("recall needs at least one known question")
        if not -1.0 <= self.min_similarity <= 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1], got {self.min_similarity}")

    def save(self, directory: str | Path) -> None:
        data = asdict(self) | {"questions": list(self.questions)}
        (Path(directory) / RECALL_CONFIG_NAME).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, directory: str | Path) -> RecallConfig | None:
        path = Path(directory) / RECALL_CONFIG_NAME
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(**(data | {"questions": tuple(data["questions"])}))
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"malformed {path}: {e}") from e


def _load_wordllama():
    import wordllama
    from wordllama import WordLlama

    # The wheel ships the default model's weights and tokenizer; the cache_dir points the
    # loader at them (its own lookup of the tokenizer misses the wheel's folder) and
    # downloads stay off.
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)


class Recall:
    """Nearest known question by WordLlama similarity (thread-safe: read-only after init)."""

    def __init__(self, config: RecallConfig) -> None:
        self.config = config
        self.questions = [q for q in dict.fromkeys(config.questions) if q.strip()]
        self._model = _load_wordllama()
        self._lock = threading.Lock()  # its tokenizer is shared by the sessions' threads
        self._known = self._embed(self.questions)  # (Q, D), unit rows

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.embed(texts, norm=True), dtype=np.float32)

    def nearest(self, text: str, exclude: str | None = None) -> tuple[str, float] | None:
        """(known question, cosine similarity) nearest to `text`, `exclude` left out; None
        for empty text or when nothing is at least `min_similarity` close."""
        if not text.strip():
            return None
        sims = self._known @ self._embed([text])[0]
        if exclude is not None:
            sims = np.where([q == exclude for q in self.questions], -np.inf, sims)
        best = int(np.argmax(sims))
        if not np.isfinite(sims[best]) or sims[best] < self.config.min_similarity:
            return None
        return self.questions[best], float(sims[best])

    def apply(self, turn: UserTurn, exclude: str | None = None) -> UserTurn:
        """The turn with the nearest known question appended to its text (as it is unless
        it has text and something is near enough)."""
        found = self.nearest(turn.text, exclude)
        if found is None:
            return turn
        return replace(turn, text=f"{turn.text.strip()}{RECALL_SEPARATOR}{found[0]}")
