from __future__ import annotations

import pytest

from agent.turns import TurnConfig, parse_text_message


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
