from __future__ import annotations

import pytest

from agent.turns import TurnConfig, TurnRate, parse_text_message


@pytest.mark.parametrize(
    ("message", "text", "error"),
    [
        ({"type": "text", "text": " hi "}, "hi", None),
        ({"type": "text", "text": ""}, None, "text is empty"),
        ({"type": "text", "text": "   "}, None, "text is empty"),
        ({"type": "text", "text": ["a"]}, None, "text must be a string"),
        ({"type": "text"}, None, "text must be a string"),
        ({"type": "audio"}, None, "unknown message type 'audio'"),
        ({}, None, "unknown message type 'None'"),
        ({"type": "text", "text": "x" * 11}, None, "text longer than 10 characters"),
        # JSON's "\ud800": a str the tokenizer and espeak-ng raise on
        ({"type": "text", "text": "hi \ud800"}, None, "text is not valid Unicode"),
    ],
)
def test_typed_turns(message, text, error) -> None:
    assert parse_text_message(message, TurnConfig(max_text_chars=10)) == (text, error)


def test_typed_turn_rate_allows_a_burst_then_the_sustained_rate() -> None:
    rate = TurnRate(TurnConfig(text_burst=3, text_per_s=2.0))
    assert [rate.allow(10.0) for _ in range(4)] == [True, True, True, False]
    assert not rate.allow(10.4)  # 0.8 of a token back
    assert rate.allow(10.5)
    assert [rate.allow(100.0) for _ in range(4)] == [True, True, True, False]  # capped at 3
