"""The Conductor meter: intent accuracy and directive-format validity.

A predicted directive is mapped back to the domain answer whose speech it matches best (by word
error rate); its intent is then compared with the visitor's true intent. `answer_accuracy`
also needs the right visual variant (ticket vs map...), so it measures video understanding.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jiwer

from mavid.data.domain import INTENTS
from mavid.data.faces import MOTIONS
from mavid.eval.wer import normalize_text
from mavid.interfaces import CancelToken, Conductor, DirectiveDelta, UserTurn

try:  # the model's own parser, when the Conductor package is present
    from mavid.conductor.parser import parse_directives
except ImportError:  # pragma: no cover - only without mavid.conductor
    parse_directives = None

__all__ = [
    "ConductorScore",
    "collect_directive",
    "directive_valid",
    "match_answer",
    "score_conductor",
    "split_directive",
]

_FORMAT = re.compile(
    r"^\s*(?P<speech>[^<>]*\S[^<>]*?)\s*<m_bos>\s*(?P<motion>[^<>]*?)\s*<m_eos>\s*$"
)
MAX_MATCH_WER = 0.5  # farther than this from every domain answer: no intent


def split_directive(text: str) -> tuple[str, str]:
    """(speech, motion) of a directive text, leniently (the model's parser when present)."""
    if parse_directives is not None:
        return parse_directives(text)
    speech, _, rest = text.partition("<m_bos>")
    return " ".join(speech.split()), " ".join(rest.split("<m_eos>", 1)[0].split())


def directive_valid(text: str) -> bool:
    """Strict Eq. 3 format: 'speech <m_bos> motion <m_eos>', speech non-empty, motions known.

    Motion is a comma-separated list from the fixed vocabulary, or empty (plain QA).
    """
    m = _FORMAT.match(text)
    if m is None:
        return False
    motions = [x.strip().lower() for x in m.group("motion").split(",") if x.strip()]
    return all(x in MOTIONS for x in motions) and len(set(motions)) == len(motions)


def _answers() -> list[tuple[str, str, str]]:
    out = []
    for intent in INTENTS:
        if intent.visual:
            out += [(intent.name, p, normalize_text(a.speech)) for p, a in intent.by_prop.items()]
        else:
            out.append((intent.name, "none", normalize_text(intent.answer_for().speech)))
    return out


def match_answer(speech: str) -> tuple[str, str] | None:
    """(intent, prop) of the domain answer closest to `speech`, or None if none is close."""
    hyp = normalize_text(speech)
    if not hyp:
        return None
    best, best_wer = None, float("inf")
    for intent, prop, ref in _answers():
        w = jiwer.wer(ref, hyp)
        if w < best_wer:
            best, best_wer = (intent, prop), w
    return best if best_wer <= MAX_MATCH_WER else None


@dataclass(frozen=True)
class ConductorScore:
    intent_accuracy: float
    answer_accuracy: float  # intent and visual variant both right
    format_validity: float
    motion_accuracy: float  # predicted motion set == reference motion set
    count: int


def score_conductor(
    predictions: Sequence[str],
    intents: Sequence[str],
    props: Sequence[str],
    motions: Sequence[str] | None = None,
) -> ConductorScore:
    """Score raw directive texts against the true intents (and visual props / motions)."""
    n = len(predictions)
    if (
        n == 0
        or len(intents) != n
        or len(props) != n
        or (motions is not None and len(motions) != n)
    ):
        raise ValueError("predictions, intents, props (and motions) must be equal, non-empty")
    known = {i.name for i in INTENTS}
    if unknown := set(intents) - known:
        raise ValueError(f"unknown intents {sorted(unknown)}")
    hit_i = hit_a = valid = hit_m = 0
    for k, text in enumerate(predictions):
        valid += directive_valid(text)
        speech, motion = split_directive(text)
        got = match_answer(speech)
        visual = next(i for i in INTENTS if i.name == intents[k]).visual
        if got is not None and got[0] == intents[k]:
            hit_i += 1
            hit_a += (not visual) or got[1] == props[k]
        if motions is not None:
            want = {m.strip() for m in motions[k].split(",") if m.strip()}
            hit_m += {m.strip().lower() for m in motion.split(",") if m.strip()} == want
    return ConductorScore(
        intent_accuracy=hit_i / n,
        answer_accuracy=hit_a / n,
        format_validity=valid / n,
        motion_accuracy=hit_m / n if motions is not None else float("nan"),
        count=n,
    )


def collect_directive(deltas: Iterable[DirectiveDelta]) -> str:
    """Rebuild a directive text from a Conductor's streamed deltas."""
    speech, motion = [], []
    for d in deltas:
        speech.append(d.speech)
        motion.append(d.motion)
    return f"{''.join(speech).strip()} <m_bos> {''.join(motion).strip()} <m_eos>"


def run_conductor(conductor: Conductor, turn: UserTurn, cancel: CancelToken | None = None) -> str:
    """One turn through any `Conductor` (blocking), as a directive text for `score_conductor`."""
    return collect_directive(conductor.stream(turn, cancel or CancelToken()))
