"""Incremental parser of the Conductor's decoupled output (Eq. 3) into speech / motion deltas.

The text arrives in arbitrary pieces (tokens, SSE chunks), so a special token may be split
across deltas ("<m_" then "bos>"). The parser holds back only a tail that could still become a
special token, so output is emitted as early as possible and any split of the input gives the
same concatenated output as one-shot parsing.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

from mavid.conductor.format import M_BOS, M_EOS
from mavid.interfaces import DirectiveDelta

# Chat/control tokens of Qwen-style tokenizers (<|im_end|>, <|endoftext|>, <|AUDIO|> ...).
_MAX_NAME = 32
_CHAT_TOKEN = re.compile(rf"<\|[A-Za-z0-9_]{{1,{_MAX_NAME}}}\|>")
_CHAT_PREFIX = re.compile(rf"<(\|([A-Za-z0-9_]{{1,{_MAX_NAME}}}\|?)?)?")


class _Part(Enum):
    SPEECH = "speech"
    MOTION = "motion"
    DONE = "done"


def _clean_char(ch: str) -> str:
    """One character of directive text: drop what no TTS or prompt should ever see."""
    if ch in "\n\r\t":
        return " "
    # "<" and ">" only ever start/end markup here; dropping them means no output can
    # contain a special token, even one glued together from garbage around a dropped token.
    # U+FFFD is what a byte-level tokenizer's decoder gives for an invalid UTF-8 sequence:
    # never speech, and a TTS would read it aloud as "replacement character" or a glitch.
    if ch in "<>\ufffd":
        return ""
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cs", "Co", "Cn"):  # control, lone surrogate, private use, unassigned
        return ""
    return ch


def _clean(text: str) -> str:
    return "".join(_clean_char(c) for c in text)


def _is_special_prefix(tail: str) -> bool:
    """Whether `tail` (starting with "<") may still grow into a special token."""
    if M_BOS.startswith(tail) or M_EOS.startswith(tail):
        return True
    return _CHAT_PREFIX.fullmatch(tail) is not None


class DirectiveParser:
    """Turns a stream of text deltas into `DirectiveDelta`s: speech, then motion after <m_bos>.

    - `<m_eos>` ends the motion part; text after it is ignored. A missing `<m_eos>` is fine:
      the end of the stream closes the motion part.
    - A stray `<m_eos>` before `<m_bos>`, a second `<m_bos>` and chat tokens such as
      `<|im_end|>` are dropped; control characters and lone surrogates are removed.
    """

    def __init__(self) -> None:
        self._part = _Part.SPEECH
        self._held = ""  # a tail that may be the start of a special token

    @property
    def in_motion(self) -> bool:
        return self._part is _Part.MOTION

    @property
    def done(self) -> bool:
        return self._part is _Part.DONE

    def feed(self, text_delta: str) -> list[DirectiveDelta]:
        if not isinstance(text_delta, str):
            raise TypeError(f"DirectiveParser.feed expects str, got {type(text_delta).__name__}")
        if self._part is _Part.DONE:
            return []
        buf = self._held + text_delta
        self._held = ""
        out: list[DirectiveDelta] = []
        literal: list[str] = []  # text of the current part not yet emitted

        def emit() -> None:
            text = _clean("".join(literal))
            literal.clear()
            if text:
                out.append(
                    DirectiveDelta(speech=text)
                    if self._part is _Part.SPEECH
                    else DirectiveDelta(motion=text)
                )

        i = 0
        while i < len(buf):
            lt = buf.find("<", i)
            if lt < 0:
                literal.append(buf[i:])
                break
            literal.append(buf[i:lt])
            rest = buf[lt:]
            if rest.startswith(M_BOS):
                emit()
                if self._part is _Part.SPEECH:
                    self._part = _Part.MOTION
                i = lt + len(M_BOS)
            elif rest.startswith(M_EOS):
                emit()
                if self._part is _Part.MOTION:
                    self._part = _Part.DONE
                    return out
                i = lt + len(M_EOS)
            elif (m := _CHAT_TOKEN.match(rest)) is not None:
                i = lt + m.end()
            elif _is_special_prefix(rest):
                self._held = rest
                break
            else:
                literal.append("<")
                i = lt + 1
        emit()
        return out

    def close(self) -> list[DirectiveDelta]:
        """End of stream: a held partial special token is a truncated token, so it is dropped."""
        self._held = ""
        self._part = _Part.DONE
        return []


def parse_directives(text: str) -> tuple[str, str]:
    """One-shot parse of a whole answer into (speech, motion), whitespace-normalised."""
    parser = DirectiveParser()
    deltas = parser.feed(text) + parser.close()
    speech = "".join(d.speech for d in deltas)
    motion = "".join(d.motion for d in deltas)
    return " ".join(speech.split()), " ".join(motion.split())
