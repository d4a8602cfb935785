from __future__ import annotations

import pytest

from agent.state import SessionState, check_transition

L, T, S = SessionState.LISTENING, SessionState.THINKING, SessionState.SPEAKING


def test_the_cycle_and_barge_in_are_allowed() -> None:
    for old, new in [(L, T), (T, S), (S, L), (T, L)]:
        check_transition(old, new)


@pytest.mark.parametrize(("old", "new"), [(L, S), (S, T), (L, L)])
def test_other_transitions_are_refused(old, new) -> None:
    with pytest.raises(RuntimeError, match="illegal"):
        check_transition(old, new)
