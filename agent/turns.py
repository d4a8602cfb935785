"""Turn-taking rules that are not VAD: typed user turns from the peer's messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TurnConfig:
    max_text_chars: int = 2_000  # a typed turn longer than this is refused
    # typed turns beyond this rate are refused: each one cuts the answer and starts the
    # Conductor in the worker threads every session shares, so a flood would starve the rest
    text_burst: int = 5
    text_per_s: float = 2.0


class TurnRate:
    """A token bucket over typed turns: `text_burst` at once, `text_per_s` sustained."""

    def __init__(self, config: TurnConfig) -> None:
        self.config = config
        self._tokens = float(config.text_burst)
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        """Take a token at monotonic time `now` if one is left."""
        if self._last is not None:
            elapsed = max(0.0, now - self._last)
            self._tokens = min(
                self.config.text_burst, self._tokens + elapsed * self.config.text_per_s
            )
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def parse_text_message(
    message: Mapping[str, Any], config: TurnConfig
) -> tuple[str | None, str | None]:
    """(text, None) for a valid `{"type": "text", "text": ...}`, else (None, error message)."""
    kind = message.get("type")
    if kind != "text":
        return None, f"unknown message type {str(kind)[:40]!r}"
    text = message.get("text")
    if not isinstance(text, str):
        return None, "text must be a string"
    text = text.strip()
    if not text:
        return None, "text is empty"
    if not is_unicode(text):
        return None, "text is not valid Unicode"
    if len(text) > config.max_text_chars:
        return None, f"text longer than {config.max_text_chars} characters"
    return text, None


def is_unicode(text: str) -> bool:
    """False for a str that is not valid Unicode: JSON's "\\ud800" decodes to a lone
    surrogate, which the tokenizer and espeak-ng raise on (a model error, fatal to the session)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
