"""Word error rate of speech against its speech directive: PocketSphinx + jiwer.

Two language models (`mavid.asr.Recognizer`): PocketSphinx's general en-US model (which
recognises espeak voices poorly) and a domain bigram model written from `domain_corpus()`;
report both figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import jiwer

from mavid.asr import Recognizer, normalize_text, write_arpa

__all__ = ["Recognizer", "WerResult", "normalize_text", "word_error_rate", "write_arpa"]


@dataclass(frozen=True)
class WerResult:
    wer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int
    hypotheses: tuple[str, ...]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> WerResult:
    """Corpus WER (jiwer) after the same normalisation of both sides."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError("need as many hypotheses as (>= 1) references")
    refs = [normalize_text(r) for r in references]
    if not all(refs):
        raise ValueError("a reference is empty after normalisation")
    hyps = [normalize_text(h) for h in hypotheses]
    out = jiwer.process_words(refs, hyps)
    return WerResult(
        wer=float(out.wer),
        substitutions=out.substitutions,
        deletions=out.deletions,
        insertions=out.insertions,
        reference_words=sum(len(r.split()) for r in refs),
        hypotheses=tuple(hyps),
    )
