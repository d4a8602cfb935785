"""The ear's letters read as words: a real CTC beam search (flashlight-text with KenLM) through
the words of the questions the Conductor knows."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from micro_world import one_torch_thread

from mavid.conductor.ear import ALPHABET, Ear, EarConfig
from mavid.conductor.ear_words import WordSearch
from mavid.conductor.hearing import HEARING_CONFIG_NAME, Hearing, HearingConfig
from mavid.data.domain import known_corpus
from mavid.data.speech import synthesize
from mavid.interfaces import UserTurn

SR = 16_000
QUESTIONS = ("Where is the café?", "What time do you open?", "Where is the cloakroom?", "Hi!")


def _said(letters: str, sure: float = 0.98) -> torch.Tensor:
    """CTC log-probabilities (frames, letters + 1) of an ear that heard `letters`, each letter
    on one frame between blanks, `sure` of each."""
    ids = [0]
    for c in letters:
        ids += [ALPHABET.index(c) + 1, 0]
    logp = torch.full((len(ids), len(ALPHABET) + 1), float(np.log((1 - sure) / len(ALPHABET))))
    logp[torch.arange(len(ids)), torch.tensor(ids)] = float(np.log(sure))
    return logp


@pytest.fixture(scope="module")
def search() -> WordSearch:
    return WordSearch(QUESTIONS)


def test_letters_become_the_words_they_spell(search):
    assert search.words(_said("where is the cafe")) == "where is the cafe"
    # the last word has no space after it, as the ear writes a turn's end
    assert search.words(_said("what time do you open")) == "what time do you open"
    assert set(search.vocabulary) == {
        "where", "is", "the", "cafe", "what", "time", "do", "you", "open", "cloakroom", "hi"
    }  # fmt: skip


def test_misspelt_letters_become_known_words(search):
    # the ear's kind of errors: a dropped letter, a letter heard wrong, words run together
    assert search.words(_said("wher is the clokroom")) == "where is the cloakroom"
    assert search.words(_said("what tim do you opem")) == "what time do you open"
    assert search.words(_said("whereis the cafe")) == "where is the cafe"


def test_the_bigram_decides_between_words_the_letters_leave_open():
    # one frame heard as "f" or "k" nearly alike ("k" a little likelier): after "where is the"
    # the known word is "cafe", after "i want a" it is "cake"
    search = WordSearch(("Where is the cafe?", "I want a cake."))

    def unclear(letters: str) -> torch.Tensor:
        logp = _said(letters)
        frame = 2 * letters.index("f") + 1
        logp[frame] = float(np.log(0.01 / len(ALPHABET)))
        logp[frame, ALPHABET.index("f") + 1] = float(np.log(0.49))
        logp[frame, ALPHABET.index("k") + 1] = float(np.log(0.5))
        return logp

    assert search.words(unclear("where is the cafe")) == "where is the cafe"
    assert search.words(unclear("i want a cafe")) == "i want a cake"
    blind = WordSearch(("Where is the cafe?", "I want a cake."), lm_weight=0.0, word_score=0.0)
    assert blind.words(unclear("where is the cafe")) == "where is the cake"  # letters alone


def test_bad_input_is_refused_or_hears_nothing(search):
    assert search.words(torch.zeros(0, len(ALPHABET) + 1)) == ""
    assert search.words(torch.full((5, len(ALPHABET) + 1), float("nan"))) == ""
    with pytest.raises(ValueError, match="frames"):
        search.words(torch.zeros(5, 7))
    with pytest.raises(ValueError, match="frames"):
        search.words(torch.zeros(len(ALPHABET) + 1))
    with pytest.raises(ValueError, match="words"):
        WordSearch(["", "?!", "  "])


def test_searches_from_many_threads_agree(search):
    said = [_said(t) for t in ("where is the cafe", "wher is the clokroom", "hi", "what tim")]
    alone = [search.words(s) for s in said]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(search.words, said * 10))
    assert together == alone * 10


def test_the_hearing_reads_a_sure_ears_letters_as_known_words():
    with one_torch_thread():
        torch.manual_seed(0)
        ear = Ear(EarConfig(dim=32, layers=1, heads=2, ffn=64, dropout=0.0)).eval()
        turn = UserTurn(audio=synthesize("Is there wifi here?", sample_rate=SR).audio,
                        audio_sample_rate=SR)  # fmt: skip
        letters, sure = ear.hear(turn.audio, SR)
        corpus = tuple(known_corpus())

        def heard(ear_words: bool) -> str:
            config = HearingConfig(corpus=corpus, ear=True, ear_confidence=sure, known=QUESTIONS,
                                   known_misfit=0.0, ear_words=ear_words)  # fmt: skip
            return Hearing(config, ear).transcribe(turn)

        assert heard(False) == letters  # an untrained ear's letters, as they come
        words = heard(True)
        # (whatever an untrained ear heard, spelt in the known questions' words)
        assert words and set(words.split()) <= set(WordSearch(QUESTIONS).vocabulary)
    with pytest.raises(ValueError, match="known"):
        HearingConfig(corpus=corpus, ear_words=True)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="ear_words_beam"):
            HearingConfig(corpus=corpus, known=QUESTIONS, ear_words_beam=bad)
    for bad in (float("nan"), "loud", None, True):
        with pytest.raises(ValueError, match="ear_words_lm_weight"):
            HearingConfig(corpus=corpus, known=QUESTIONS, ear_words_lm_weight=bad)
    with pytest.raises(ValueError, match="ear_words"):
        HearingConfig(corpus=corpus, known=QUESTIONS, ear_words="yes")


def test_a_hearing_with_its_word_search_is_saved_and_loaded(tmp_path):
    config = HearingConfig(corpus=tuple(known_corpus()), known=QUESTIONS, ear_words=True,
                           ear_words_lm_weight=1.0, ear_words_beam=8)  # fmt: skip
    config.save(tmp_path)
    assert HearingConfig.load(tmp_path) == config
    saved = json.loads((tmp_path / HEARING_CONFIG_NAME).read_text())
    for bad in ({"ear_words_score": "high"}, {"ear_words": 1}, {"ear_words_beam": 0}):
        (tmp_path / HEARING_CONFIG_NAME).write_text(json.dumps(saved | bad))
        with pytest.raises(ValueError, match="malformed"):
            HearingConfig.load(tmp_path)


def test_loading_leaves_the_processs_output_alone(capfd, caplog):
    # KenLM writes a progress bar to the C-level stderr as it loads: it goes to the log instead
    capfd.readouterr()
    with caplog.at_level("DEBUG", logger="mavid.conductor.ear_words"):
        WordSearch(QUESTIONS)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("Reading" in r.getMessage() for r in caplog.records)
