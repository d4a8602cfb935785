"""What people say to the museum's avatar that its desk does not answer: the knowledge base's
texts from elsewhere (`KnowledgeConfig.elsewhere`).

First, requests people make of a voice assistant (`elsewhere_requests.txt`: the weather, a
taxi, music, reminders, banking, directions in town, homework, ...): 300 written by a helper
session in round 19, shown none of the questions from elsewhere they are measured on, less
the 20 spelt like one of those (rapidfuzz ratio >= 75) or meaning nearly the same (cosine >=
0.9; tests/test_shipped_weights.py checks it). Then the English lines of chatterbot-corpus
(Gunther Cox, BSD-3-Clause; a PyPI wheel of YAML conversations, written by people): trivia,
computers, coding, science, sports, money, emotions, films, politics and more, each line of
three to 25 words once. Its greetings, small-talk conversations and the bot's own profile are
left out (hellos, thanks and goodbyes are the domain's own intents), and its health and food
talk ("I'm not feeling well", "what is good to eat?": the domain's first aid and café).
"""

from __future__ import annotations

from importlib import resources

import yaml

__all__ = ["ELSEWHERE_SKIPPED", "chatterbot_lines", "elsewhere_requests", "elsewhere_texts"]

ELSEWHERE_SKIPPED = ("botprofile", "conversations", "food", "greetings", "health")
MIN_WORDS, MAX_WORDS = 3, 25


def elsewhere_requests() -> tuple[str, ...]:
    """The requests of a voice assistant's users (`elsewhere_requests.txt`), in file order."""
    text = resources.files(__package__).joinpath("elsewhere_requests.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def elsewhere_texts() -> tuple[str, ...]:
    """The requests, then chatterbot-corpus's English lines (both sides of each conversation),
    in file order, each once."""
    return tuple(dict.fromkeys((*elsewhere_requests(), *chatterbot_lines())))


def chatterbot_lines() -> tuple[str, ...]:
    """chatterbot-corpus's English lines (both sides of each conversation), in file order."""
    try:
        root = resources.files("chatterbot_corpus").joinpath("data", "english")
    except ModuleNotFoundError as e:  # (a serving install; only export needs it)
        raise RuntimeError(
            "the texts from elsewhere come from chatterbot-corpus: pip install -e '.[train]'"
        ) from e
    lines: list[str] = []
    for item in sorted(root.iterdir(), key=lambda f: f.name):
        name = item.name.removesuffix(".yml")
        if not item.name.endswith(".yml") or name in ELSEWHERE_SKIPPED:
            continue
        for conversation in yaml.safe_load(item.read_text(encoding="utf-8"))["conversations"]:
            for line in conversation:
                if isinstance(line, str) and MIN_WORDS <= len(line.split()) <= MAX_WORDS:
                    lines.append(line.strip())
    if not lines:
        raise RuntimeError(f"no English lines found in {root}")
    return tuple(dict.fromkeys(lines))
