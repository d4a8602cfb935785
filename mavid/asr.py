"""Offline speech recognition: PocketSphinx en-US with its general or a domain language model.

Used by the meters (WER of generated speech, `mavid.eval.wer`) and by the Conductor's hearing
(`mavid.conductor.hearing`): PocketSphinx's acoustic model was trained on people's speech, so it
hears voices the tiny Thinker's own audio tower never did. The domain model is a bigram written
from a list of texts; the general one (which recognises espeak voices poorly) ships with it.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
from pocketsphinx import Decoder, get_model_path

from mavid.data.domain import domain_corpus
from mavid.data.speech import resample

__all__ = [
    "ASR_SAMPLE_RATE",
    "Recognizer",
    "checked_mono",
    "cmu_words",
    "normalize_text",
    "recognizer_input",
    "write_arpa",
]

ASR_SAMPLE_RATE = 16_000
_DISCOUNT = 0.5  # absolute discounting of the bigram counts


@cache
def cmu_words() -> frozenset[str]:
    """The words of the CMU pronouncing dictionary shipped with PocketSphinx (lower case,
    apostrophes kept, alternative pronunciations' "(2)" markers dropped)."""
    path = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
    with open(path, encoding="utf-8", errors="replace") as f:
        return frozenset(re.sub(r"\(\d+\)$", "", line.split(" ", 1)[0]) for line in f)


def normalize_text(text: str) -> str:
    """Lower case ASCII words only: 'Café, open!' -> 'cafe open'. Directive tags removed."""
    text = text.replace("<m_bos>", " ").replace("<m_eos>", " ")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z' ]+", " ", text).replace(" '", " ").split())


def _sentences(texts: Iterable[str]) -> list[list[str]]:
    out = []
    for t in texts:
        t = t.split("<m_bos>", 1)[0]
        # the whole text (answers are spoken in one go) and each sentence on its own
        out.append(normalize_text(t).split())
        out.extend(normalize_text(s).split() for s in re.split(r"[.?!]+", t))
    return [s for s in out if s]


def write_arpa(texts: Iterable[str], path: Path) -> Path:
    """A bigram ARPA language model (absolute discounting, backoff) of `texts`.

    No maintained ARPA writer ships in a wheel here (kenlm/SRILM are native tools), and a
    bigram over a closed domain of a few hundred sentences needs only the textbook formulas.
    """
    sents = [["<s>", *s, "</s>"] for s in _sentences(texts)]
    if not sents:
        raise ValueError("write_arpa needs at least one non-empty text")
    uni = Counter(w for s in sents for w in s[1:])  # <s> is never predicted
    bi = Counter((a, b) for s in sents for a, b in itertools.pairwise(s))
    vocab = sorted(set(uni) | {"<s>"})
    total = sum(uni.values())
    # add-half unigrams over the vocabulary, <s> excluded
    p_uni = {w: (uni[w] + 0.5) / (total + 0.5 * (len(vocab) - 1)) for w in vocab if w != "<s>"}
    ctx = Counter()
    followers: dict[str, list[str]] = {}
    for (a, b), c in bi.items():
        ctx[a] += c
        followers.setdefault(a, []).append(b)
    p_bi: dict[tuple[str, str], float] = {}
    bow: dict[str, float] = {}
    for a, ws in followers.items():
        alpha = _DISCOUNT * len(ws) / ctx[a]
        for b in ws:
            p_bi[(a, b)] = (bi[(a, b)] - _DISCOUNT) / ctx[a] + alpha * p_uni[b]
        left = 1 - sum(p_bi[(a, b)] for b in ws)
        right = 1 - sum(p_uni[b] for b in ws)
        bow[a] = left / right if right > 0 and left > 0 else 1e-6

    def lg(p: float) -> str:
        return f"{math.log10(p):.6f}" if p > 0 else "-99.000000"

    lines = ["\\data\\", f"ngram 1={len(vocab)}", f"ngram 2={len(p_bi)}", "", "\\1-grams:"]
    for w in vocab:
        p = -99.0 if w == "<s>" else math.log10(p_uni[w])
        b = f"\t{math.log10(bow[w]):.6f}" if w in bow else ""
        lines.append(f"{p:.6f}\t{w}{b}")
    lines += ["", "\\2-grams:"]
    lines += [f"{lg(p)}\t{a} {b}" for (a, b), p in sorted(p_bi.items())]
    lines += ["", "\\end\\", ""]
    path = Path(path)
    path.write_text("\n".join(lines))
    return path


def checked_mono(audio: np.ndarray) -> np.ndarray:
    """`audio` as (N,) float32; ValueError for audio that is not mono or not finite."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono (N,) audio, got {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("audio contains NaN or inf")
    return audio


def recognizer_input(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    """(N,) mono audio as a recognizer reads it: float32 at `rate`, clipped to [-1, 1];
    ValueError for audio that is not mono or not finite."""
    return np.clip(resample(checked_mono(audio), sample_rate, rate), -1.0, 1.0)


class Recognizer:
    """PocketSphinx en-US with the general LM ("general") or the domain bigram ("domain")."""

    def __init__(self, lm: str = "domain", corpus: Sequence[str] | None = None) -> None:
        if lm not in ("general", "domain"):
            raise ValueError(f"lm must be 'general' or 'domain', got {lm!r}")
        self.lm = lm
        model = Path(get_model_path()) / "en-us"
        kwargs = {"hmm": str(model / "en-us"), "dict": str(model / "cmudict-en-us.dict")}
        self._tmp = None
        if lm == "general":
            kwargs["lm"] = str(model / "en-us.lm.bin")
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="mavid-lm-")
            arpa = write_arpa(
                corpus if corpus is not None else domain_corpus(),
                Path(self._tmp.name) / "domain.arpa",
            )
            kwargs["lm"] = str(arpa)
        self._decoder = Decoder(loglevel="FATAL", **kwargs)
        self._lock = threading.Lock()  # one utterance at a time per decoder (sessions share it)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """Words heard in (N,) float32 mono audio; '' when nothing is recognised."""
        pcm = (recognizer_input(audio, sample_rate, ASR_SAMPLE_RATE) * 32767).astype(np.int16)
        d = self._decoder
        with self._lock:
            d.start_utt()
            d.process_raw(pcm.tobytes(), full_utt=True)
            d.end_utt()
            hyp = d.hyp()
        return normalize_text(hyp.hypstr) if hyp is not None else ""
