"""WER with PocketSphinx (general and domain LMs) and jiwer."""

import numpy as np
import pytest

from mavid.data.domain import intent_by_name
from mavid.data.speech import Voice, synthesize
from mavid.eval.wer import Recognizer, normalize_text, word_error_rate, write_arpa

ANSWERS = [
    intent_by_name("opening_hours").answer_for().speech,
    intent_by_name("wifi").answer_for().speech,
]


@pytest.fixture(scope="module")
def domain():
    return Recognizer("domain")


@pytest.fixture(scope="module")
def speech():
    return [synthesize(a, Voice("en-us+m3", rate=160)) for a in ANSWERS]


def test_normalize_text():
    assert (
        normalize_text("The Café opens at NINE! <m_bos> nod <m_eos>")
        == "the cafe opens at nine nod"
    )
    assert normalize_text("I'm here.") == "i'm here"


def test_arpa_model_is_well_formed(tmp_path):
    path = write_arpa(["Hello there.", "Hello again. Goodbye there."], tmp_path / "lm.arpa")
    text = path.read_text()
    assert text.startswith("\\data\\") and text.rstrip().endswith("\\end\\")
    n1 = int(text.split("ngram 1=")[1].split()[0])
    n2 = int(text.split("ngram 2=")[1].split()[0])
    uni = text.split("\\1-grams:\n")[1].split("\n\n")[0].splitlines()
    bi = text.split("\\2-grams:\n")[1].split("\n\n")[0].splitlines()
    assert (len(uni), len(bi)) == (n1, n2)
    assert {"<s>", "</s>", "hello", "there", "again", "goodbye"} == {
        ln.split("\t")[1] for ln in uni
    }
    # bigram probabilities of one context sum to at most 1
    probs = [10 ** float(ln.split("\t")[0]) for ln in bi if ln.split("\t")[1].startswith("hello ")]
    assert 0.5 < sum(probs) <= 1.0 + 1e-6
    with pytest.raises(ValueError, match="non-empty"):
        write_arpa(["", "  "], tmp_path / "empty.arpa")


def test_domain_lm_beats_general_lm_on_clean_speech(domain, speech):
    general = Recognizer("general")
    hyp_d = [domain.transcribe(u.audio, u.sample_rate) for u in speech]
    hyp_g = [general.transcribe(u.audio, u.sample_rate) for u in speech]
    wer_d = word_error_rate(ANSWERS, hyp_d).wer
    wer_g = word_error_rate(ANSWERS, hyp_g).wer
    # espeak voices are far from PocketSphinx's training data: the domain LM helps a lot
    assert wer_d < 0.6, hyp_d
    assert wer_d < wer_g - 0.15, (hyp_d, hyp_g)


def test_noise_in_place_of_speech_gives_a_high_wer(domain, speech):
    rng = np.random.default_rng(0)
    noise = [(0.1 * rng.standard_normal(u.audio.size)).astype(np.float32) for u in speech]
    hyps = [domain.transcribe(n, 24_000) for n in noise]
    assert word_error_rate(ANSWERS, hyps).wer > 0.9


def test_bad_input(domain):
    with pytest.raises(ValueError, match="mono"):
        domain.transcribe(np.zeros((2, 100), np.float32), 16_000)
    with pytest.raises(ValueError, match="NaN"):
        domain.transcribe(np.full(1600, np.nan, np.float32), 16_000)
    with pytest.raises(ValueError, match="as many"):
        word_error_rate(["a b"], [])
    with pytest.raises(ValueError, match="lm must be"):
        Recognizer("tiny")
    r = word_error_rate(["a b c d"], ["a x c"])
    assert (r.substitutions, r.deletions, r.insertions, r.wer) == (1, 1, 0, 0.5)
