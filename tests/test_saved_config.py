"""The JSON configs saved beside a Thinker: absent is None, unreadable is a named ValueError."""

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
