"""The JSON configs saved beside a Thinker: absent is None, unreadable is a named ValueError."""

import json
from dataclasses import asdict

import pytest

from mavid.conductor.features import INPUTS_CONFIG_NAME, ThinkerInputsConfig
from mavid.conductor.hearing import HEARING_CONFIG_NAME, HearingConfig
from mavid.conductor.knowledge import KNOWLEDGE_CONFIG_NAME, KnowledgeConfig
from mavid.conductor.word_reading import READING_CONFIG_NAME, WordReadingConfig

LOADERS = [
    (ThinkerInputsConfig, INPUTS_CONFIG_NAME),
    (HearingConfig, HEARING_CONFIG_NAME),
    (WordReadingConfig, READING_CONFIG_NAME),
    (KnowledgeConfig, KNOWLEDGE_CONFIG_NAME),
]


@pytest.mark.parametrize(("cls", "name"), LOADERS)
@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"a string"', '{"no_such_key": 1}'])
def test_an_unreadable_config_is_named_and_an_absent_one_is_none(tmp_path, cls, name, text):
    assert cls.load(tmp_path) is None
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=f"malformed .*{name}"):
        cls.load(tmp_path)


def test_a_saved_config_loads_back(tmp_path):
    inputs = ThinkerInputsConfig(frame_size=64, system_prompt="Answer.")
    inputs.save(tmp_path)
    assert ThinkerInputsConfig.load(tmp_path) == inputs


SAVED_INPUTS = json.dumps(asdict(ThinkerInputsConfig()) | {"max_frames": True})


@pytest.mark.parametrize(
    ("cls", "name", "text", "why"),
    [
        # a bare string is no list of questions (it would be read letter by letter)
        (HearingConfig, HEARING_CONFIG_NAME, '{"corpus": ["Hi."], "known": "Hello there."}',
         "list of texts"),
        (HearingConfig, HEARING_CONFIG_NAME, '{"corpus": ["Hi."], "known": [1, 2]}',
         "list of texts"),
        (KnowledgeConfig, KNOWLEDGE_CONFIG_NAME, '{"entries": [{"questions": "Hi?"}]}',
         "list of texts"),
        # a JSON true is no count
        (ThinkerInputsConfig, INPUTS_CONFIG_NAME, SAVED_INPUTS, "max_frames"),
        (HearingConfig, HEARING_CONFIG_NAME, '{"corpus": ["Hi."], "known_shortlist": true}',
         "known_shortlist"),
    ],
)  # fmt: skip
def test_lists_of_texts_and_counts_are_checked_on_load(tmp_path, cls, name, text, why):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=f"malformed .*{name}.*{why}"):
        cls.load(tmp_path)
    (tmp_path / name).write_text(text.replace("true", "3").replace('"Hello there."', '["Hi"]'))
    if why != "list of texts":  # the same file with a count in it loads
        assert getattr(cls.load(tmp_path), why) == 3
