"""Reading the small JSON configs saved beside a Thinker (inputs, hearing, word reading,
knowledge): absent is None, anything unreadable a ValueError naming the file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def load_config(directory: str | Path, name: str, build: Callable[[Any], T]) -> T | None:
    """`build(parsed JSON)` of `directory/name`, None when the file is not there. Bad JSON,
    missing or unknown keys, values of the wrong type or refused by the config's own checks
    raise ValueError("malformed <path>: ...")."""
    path = Path(directory) / name
    if not path.exists():
        return None
    try:
        return build(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"malformed {path}: {e}") from e


def check_int(name: str, value: object, low: int) -> None:
    """Refuse a config value that is no integer >= `low` (a JSON true is no integer)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_number(name: str, value: object) -> None:
    """Refuse a config value that is no finite number (a JSON true is no number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def texts(value: object) -> tuple[str, ...]:
    """A JSON list of texts as a tuple (a bare string is no list of texts)."""
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"expected a list of texts, got {value!r}")
    return tuple(value)
