"""The session's conversational state: LISTENING -> THINKING -> SPEAKING -> LISTENING."""

from __future__ import annotations

import enum


class SessionState(enum.StrEnum):
    LISTENING = "listening"  # waiting for the user to finish a turn
    THINKING = "thinking"  # a user turn is being understood; no answer audio yet
    SPEAKING = "speaking"  # answer clips are playing


ALLOWED = {
    SessionState.LISTENING: {SessionState.THINKING},
    SessionState.THINKING: {SessionState.SPEAKING, SessionState.LISTENING},
    SessionState.SPEAKING: {SessionState.LISTENING},
}


def check_transition(old: SessionState, new: SessionState) -> None:
    if new not in ALLOWED[old]:
        raise RuntimeError(f"illegal session transition {old} -> {new}")
