"""Cuts the streamed speech directive into clip prompts: the words each Creator clip speaks.

The Creator makes one ~1-s clip per prompt (the first clip of a turn is shorter), and espeak
speaks about 2.5 words/s, so clip i ends after about `first_clip_words + i * words_per_clip`
words in total. Cuts fall on word boundaries and prefer a word that ends a phrase (punctuation)
when one is within a word of the target, so a clip rarely splits a phrase.
"""

from __future__ import annotations

import math

_PHRASE_END = tuple(".,;:!?")


class ClipSegmenter:
    """Incremental: `feed(speech_delta)` returns prompts as soon as enough words arrived."""

    def __init__(self, words_per_clip: float = 2.5, first_clip_words: float = 1.5) -> None:
        if not (words_per_clip > 0 and first_clip_words > 0):
            raise ValueError(
                f"words_per_clip and first_clip_words must be > 0, got "
                f"{words_per_clip!r}, {first_clip_words!r}"
            )
        self.words_per_clip = float(words_per_clip)
        self.first_clip_words = float(first_clip_words)
        self._pending = ""  # the unfinished last word (no whitespace after it yet)
        self._words: list[str] = []  # complete words not yet given out
        self._emitted_words = 0  # words given out so far, over all prompts
        self._clips = 0  # prompts given out so far

    def _target_size(self) -> int:
        """Words in the next clip: the cumulative schedule minus what was already given out.

        Following the cumulative schedule (not a fixed size per clip) means a clip cut one word
        long or short for punctuation is made up by the next one.
        """
        boundary = self.first_clip_words + self._clips * self.words_per_clip
        return max(1, math.floor(boundary + 1e-9) - self._emitted_words)

    def _cut(self, n: int) -> str:
        prompt = " ".join(self._words[:n])
        del self._words[:n]
        self._emitted_words += n
        self._clips += 1
        return prompt

    def _next_cut(self, final: bool) -> int | None:
        """How many words the next prompt takes, or None if more words are needed to decide."""
        n = self._target_size()
        have = len(self._words)
        if have < n + 1 and not final:
            return None  # look one word past the target, for a phrase end there
        if have == 0:
            return None
        n = min(n, have)
        for cand in (n, n + 1, n - 1):
            if 1 <= cand <= have and self._words[cand - 1].endswith(_PHRASE_END):
                return cand
        return n

    def _drain(self, final: bool) -> list[str]:
        prompts = []
        while (n := self._next_cut(final)) is not None:
            prompts.append(self._cut(n))
        return prompts

    def feed(self, speech_delta: str) -> list[str]:
        if not isinstance(speech_delta, str):
            raise TypeError(f"ClipSegmenter.feed expects str, got {type(speech_delta).__name__}")
        text = self._pending + speech_delta
        parts = text.split()
        if parts and not text[-1].isspace():
            self._pending = parts.pop()  # the last word may go on in the next delta
        else:
            self._pending = ""
        self._words.extend(parts)
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of the speech directive: give out every remaining word, then start afresh."""
        if self._pending:
            self._words.append(self._pending)
            self._pending = ""
        prompts = self._drain(final=True)
        self._emitted_words = 0
        self._clips = 0
        return prompts
