"""Turn-taking rules that are not VAD: typed user turns from the peer's messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TurnConfig:
    max_text_chars: int = 2_000  # a typed turn longer than this is refused


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
