"""Whisper tiny.en (the wheel's copy, CTranslate2) writes down spoken turns the ear leaves."""

import dataclasses
import threading

import numpy as np
import pytest

from mavid.conductor.hearing import WHISPER_DIR, Heard, Hearing, HearingConfig
from mavid.data.speech import Voice, synthesize
from mavid.eval.wer import normalize_text, word_error_rate
from mavid.interfaces import UserTurn
from mavid.whisper_asr import WhisperRecognizer, bundled_whisper, spell_numbers

SENTENCE = "Excuse me, where are the toilets, and how much is a ticket for a child?"


@pytest.fixture(scope="module")
def whisper() -> WhisperRecognizer:
    return WhisperRecognizer()


@pytest.fixture(scope="module")
def spoken():
    return synthesize(SENTENCE, Voice("en-us+m3", rate=150))


def test_a_clear_sentence_is_written_down_as_said(whisper, spoken):
    words = whisper.transcribe(spoken.audio, spoken.sample_rate)
    assert word_error_rate([SENTENCE], [words]).wer <= 0.2, words
    assert words == " ".join(words.split())  # one space between words, none around


def test_a_turn_longer_than_the_short_window_is_heard_whole(whisper, spoken):
    # 22 s (over the 20 s that fit one window with the silence after them): three sentences
    # with pauses between them, heard in faster-whisper's 30-s windows
    gap = np.zeros(int(2.5 * spoken.sample_rate), np.float32)
    audio = np.concatenate([spoken.audio, gap] * 3)
    audio = np.concatenate([audio, np.zeros(22 * spoken.sample_rate - audio.size, np.float32)])
    words = whisper.transcribe(audio, spoken.sample_rate)
    assert word_error_rate([" ".join([SENTENCE] * 3)], [words]).wer <= 0.3, words
    # a person saying the same thing three times looks like a repetition loop to Whisper's
    # checks; it is still decoded the one way, not sampled afresh each time
    assert whisper.transcribe(audio, spoken.sample_rate) == words


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_any_sample_rate_is_heard(whisper, spoken, rate):
    from mavid.data.speech import resample

    audio = resample(spoken.audio, spoken.sample_rate, rate)
    words = whisper.transcribe(audio, rate)
    assert word_error_rate([SENTENCE], [words]).wer <= 0.3, (rate, words)


def test_bad_audio_is_refused_and_nothing_is_made_up(whisper, spoken):
    with pytest.raises(ValueError, match="mono"):
        whisper.transcribe(np.stack([spoken.audio, spoken.audio]), spoken.sample_rate)
    nan = spoken.audio.copy()
    nan[100] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        whisper.transcribe(nan, spoken.sample_rate)
    assert whisper.transcribe(np.zeros(0, np.float32), 16_000) == ""
    # a second of digital silence: no words (Whisper's no-speech check), not a made-up phrase
    assert whisper.transcribe(np.zeros(16_000, np.float32), 16_000) == ""
    # clipping input is clipped, not wrapped
    loud = np.clip(spoken.audio * 50, -4, 4)
    assert "toilet" in normalize_text(whisper.transcribe(loud, spoken.sample_rate))


def test_silero_overrules_whispers_doubt_only_where_it_hears_speech(whisper, spoken, monkeypatch):
    # Whisper doubting every turn (its no-speech gate at 0): the sentence is still heard,
    # because silero-vad finds speech in it; digital silence, noise and a hum are not
    import mavid.whisper_asr

    monkeypatch.setattr(mavid.whisper_asr, "NO_SPEECH", 0.0)
    words = whisper.transcribe(spoken.audio, spoken.sample_rate)
    assert word_error_rate([SENTENCE], [words]).wer <= 0.2, words
    rng = np.random.default_rng(0)
    t = np.arange(32_000) / 16_000
    for sound in (
        np.zeros(32_000, np.float32),
        (0.1 * rng.standard_normal(32_000)).astype(np.float32),
        (0.2 * sum(np.sin(2 * np.pi * 50 * k * t) / k for k in range(1, 6))).astype(np.float32),
    ):
        assert whisper.transcribe(sound, 16_000) == ""
    # without the overrule Whisper's doubt stands, and silero asks for more than the sentence
    for voiced_s in (None, 60.0):
        doubting = WhisperRecognizer(voiced_s=voiced_s)
        assert doubting.transcribe(spoken.audio, spoken.sample_rate) == "", voiced_s


@pytest.mark.parametrize("voiced_s", [-1, float("nan"), float("inf"), "0.5", True])
def test_a_wrong_speech_overrule_is_refused(voiced_s):
    with pytest.raises(ValueError, match="voiced_s"):
        WhisperRecognizer(voiced_s=voiced_s)


def test_only_a_local_directory_is_read(tmp_path):
    # a size name would make faster-whisper download it; an empty folder is not a model
    for name in ("tiny.en", str(tmp_path)):
        with pytest.raises(ValueError, match="not a local CTranslate2 Whisper directory"):
            WhisperRecognizer(name)
    with pytest.raises(ValueError, match="beam"):
        WhisperRecognizer(beam=0)
    assert (bundled_whisper() / "model.bin").is_file()


def test_threads_share_one_recognizer(whisper, spoken):
    alone = whisper.transcribe(spoken.audio, spoken.sample_rate)
    out, errors = [], []

    def run():
        try:
            out.append(whisper.transcribe(spoken.audio, spoken.sample_rate))
        except Exception as e:  # (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and out == [alone] * 3


def test_numbers_are_spelt_as_the_conductor_reads_them():
    assert spell_numbers("2 tickets at 10% off") == "two tickets at ten percent off"
    assert spell_numbers("the 21st, 1,000 visitors, 3.5 hours") == (
        "the twenty-first, one thousand visitors, three point five hours"
    )
    assert spell_numbers("Room B12 opens") == "Room B12 opens"  # inside a word: left
    assert spell_numbers("no numbers here.") == "no numbers here."


def test_the_hearing_writes_down_with_whisper(tmp_path, spoken):
    config = HearingConfig(recognizer="whisper")  # (no language model's corpus needed)
    hearing = Hearing(config)
    turn = UserTurn(audio=spoken.audio, audio_sample_rate=spoken.sample_rate)
    heard = hearing.heard(turn)
    assert heard.by == "whisper" and "toilet" in normalize_text(heard.words), heard
    assert hearing.apply(turn).text == heard.words
    silent = UserTurn(audio=np.zeros(16_000, np.float32), audio_sample_rate=16_000)
    assert hearing.heard(silent).words == "" and hearing.apply(silent) == silent
    # saved and loaded with it; a relative whisper_model is read beside hearing.json
    (tmp_path / WHISPER_DIR).symlink_to(bundled_whisper(), target_is_directory=True)
    dataclasses.replace(config, whisper_model=WHISPER_DIR).save(tmp_path)
    loaded = Hearing.load(tmp_path)
    assert loaded.config.recognizer == "whisper"
    assert loaded.recognizer.directory == tmp_path / WHISPER_DIR
    assert loaded.transcribe(turn) == heard.words
    dataclasses.replace(config, whisper_model="nowhere").save(tmp_path)
    with pytest.raises(ValueError, match="not a local CTranslate2 Whisper directory"):
        Hearing.load(tmp_path)


def test_the_beams_other_hypotheses_come_likeliest_first(whisper, spoken):
    hypotheses = whisper.hypotheses(spoken.audio, spoken.sample_rate)
    assert hypotheses[0].words == whisper.transcribe(spoken.audio, spoken.sample_rate)
    assert 2 <= len(hypotheses) <= whisper.beam
    scores = [h.score for h in hypotheses]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    assert len({h.words for h in hypotheses}) == len(hypotheses)  # each once
    assert whisper.hypotheses(np.zeros(16_000, np.float32), 16_000) == []


def test_whisper_told_what_came_before_still_writes_down_what_it_hears(whisper, spoken):
    # `heard_after`: the audio encoded once, then heard after each prompt (Whisper's previous
    # text). Heard after none, as `hypotheses`; a clear sentence is written down as said after
    # a prompt it does not match; no prompt makes words out of silence
    plain, told = whisper.heard_after(
        spoken.audio, spoken.sample_rate, ("", "Where can I leave my coat?")
    )
    assert plain == whisper.hypotheses(spoken.audio, spoken.sample_rate)
    assert word_error_rate([SENTENCE], [told[0].words]).wer <= 0.2, told[0]
    silence = np.zeros(16_000, np.float32)
    assert whisper.heard_after(silence, 16_000, ("", "Is there parking?")) == [[], []]
    assert whisper.heard_after(spoken.audio, spoken.sample_rate, ()) == []
    # a prompt longer than Whisper's text context is cut to its last words, as faster-whisper
    # cuts its initial prompt (the guide's answers: 600 words)
    from mavid.data.domain import INTENTS

    answers = " ".join(i.answer_for().speech.split("<m_bos>")[0] for i in INTENTS)
    assert len(answers.split()) > 448  # (a token or more a word)
    (long,) = whisper.heard_after(spoken.audio, spoken.sample_rate, (answers,))
    assert word_error_rate([SENTENCE], [long[0].words]).wer <= 0.3, long[0]
    # (a turn longer than one window is heard after its prompt in faster-whisper's windows)
    audio = np.concatenate([spoken.audio, np.zeros(22 * spoken.sample_rate, np.float32)])
    (whole,) = whisper.heard_after(audio, spoken.sample_rate, ("Where can I leave my coat?",))
    assert word_error_rate([SENTENCE], [whole[0].words]).wer <= 0.3, whole
    with pytest.raises(ValueError, match="prompts"):
        whisper.heard_after(spoken.audio, spoken.sample_rate, "Is there parking?")


def test_a_turns_decodes_side_by_side_give_what_each_gives_alone(whisper, spoken, monkeypatch):
    # a turn's prompts are decoded side by side (two at a time): each as it is alone, in order,
    # in the short window and in faster-whisper's 30-s ones
    prompts = ("", "Where can I leave my coat?", "How much is a ticket for a child?")
    together = whisper.heard_after(spoken.audio, spoken.sample_rate, prompts)
    alone = [whisper.heard_after(spoken.audio, spoken.sample_rate, (p,))[0] for p in prompts]
    assert together == alone and all(together)
    audio = np.concatenate([spoken.audio, np.zeros(22 * spoken.sample_rate, np.float32)])
    long = whisper.heard_after(audio, spoken.sample_rate, prompts[:2])
    assert long == [whisper.heard_after(audio, spoken.sample_rate, (p,))[0] for p in prompts[:2]]
    # a decode that raises: the error reaches the caller once the others have ended, no
    # decoding thread is left, and the recognizer hears the next turn
    previous = whisper._previous

    def failing(prompt: str) -> list[int]:
        if prompt == "boom":
            raise RuntimeError("decoder failed")
        return previous(prompt)

    monkeypatch.setattr(whisper, "_previous", failing)
    with pytest.raises(RuntimeError, match="decoder failed"):
        whisper.heard_after(spoken.audio, spoken.sample_rate, ("", "boom"))
    assert not [t for t in threading.enumerate() if t.name.startswith("whisper-decode")]
    monkeypatch.undo()
    assert whisper.heard_after(spoken.audio, spoken.sample_rate, prompts[:1]) == alone[:1]


def test_the_hearing_hands_on_whispers_near_alternatives(spoken):
    turn = UserTurn(audio=spoken.audio, audio_sample_rate=spoken.sample_rate)
    alone = Hearing(HearingConfig(recognizer="whisper")).heard(turn)
    assert alone.alternatives == ()  # (off by default)
    hypotheses = WhisperRecognizer().hypotheses(spoken.audio, spoken.sample_rate)
    margin = (hypotheses[0].score - hypotheses[1].score) + 1e-6  # just the second
    hearing = Hearing(HearingConfig(recognizer="whisper", whisper_alternatives=margin))
    heard = hearing.heard(turn)
    assert heard.words == alone.words and heard.alternatives == (hypotheses[1].words,)
    wide = Hearing(HearingConfig(recognizer="whisper", whisper_alternatives=100.0))
    assert wide.heard(turn).alternatives == tuple(h.words for h in hypotheses[1:])
    assert wide.applied(turn) == (hearing.apply(turn), tuple(h.words for h in hypotheses[1:]))
    silent = UserTurn(audio=np.zeros(16_000, np.float32), audio_sample_rate=16_000)
    assert wide.heard(silent) == Heard("", "") and wide.applied(silent) == (silent, ())


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("whisper_alternatives", -0.1, "whisper_alternatives"),
        ("whisper_alternatives", float("nan"), "whisper_alternatives"),
        ("recognizer", "vosk", "recognizer must be"),
        ("whisper_beam", 0, "whisper_beam"),
        ("whisper_beam", 2.5, "whisper_beam"),
        ("whisper_model", 3, "whisper_model"),
        ("ear_second_opinion", -0.1, "ear_second_opinion"),
        ("ear_second_opinion", float("nan"), "ear_second_opinion"),
        ("ear_second_opinion", 0.6, "give ear"),
        ("ear_words_prompt", 1, "true or false"),
    ],
)
def test_a_wrong_setting_is_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        HearingConfig(**({"recognizer": "whisper"} | {field: value}))


def test_serve_hears_with_a_whisper_of_ones_own(tmp_path):
    # `serve --whisper-model DIR` (and the LiveKit worker's MAVID_WHISPER_MODEL): the shipped
    # hearing, its ear and word search kept, with that Whisper writing the rest down
    from signaling.server import ServerConfig, load_model

    own = tmp_path / "whisper-small"
    own.mkdir()
    for f in bundled_whisper().iterdir():
        (own / f.name).symlink_to(f)
    hearing = load_model(ServerConfig(whisper_model=str(own))).conductor.hearing
    assert hearing.config.recognizer == "whisper" and hearing.recognizer.directory == own
    assert hearing.ear is not None and hearing.word_search is not None
    with pytest.raises(ValueError, match="not a local CTranslate2 Whisper directory"):
        load_model(ServerConfig(whisper_model=str(tmp_path / "nowhere")))
    remote = ServerConfig(
        conductor_url="http://127.0.0.1:9/v1", conductor_model="qwen", whisper_model=str(own)
    )
    with pytest.raises(ValueError, match="hears the audio itself"):
        load_model(remote)


def _multilingual_whisper(directory):
    """A tiny random Whisper with the multilingual vocabulary's layout (51,865 tokens: text,
    <|endoftext|> at 50257, then <|startoftranscript|>, the languages, the tasks, the times),
    converted to CTranslate2 as faster-whisper's directories are."""
    import json

    import ctranslate2
    import transformers
    from tokenizers import Tokenizer, models

    languages = ["en", "zh", "de", "es", "fr"]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{x}|>" for x in languages)]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>"]
    specials += ["<|nocaptions|>", "<|notimestamps|>"]
    # (CTranslate2 tells a multilingual vocabulary by its empty text token)
    tokens = ["", *(f"w{i}" for i in range(1, 50257)), *specials]
    tokens += [f"<|{i * 0.02:.2f}|>" for i in range(51865 - len(tokens))]
    config = transformers.WhisperConfig(
        vocab_size=len(tokens),
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        decoder_start_token_id=50258,
        eos_token_id=50257,
        pad_token_id=50257,
    )
    hf = directory / "hf"
    transformers.WhisperForConditionalGeneration(config).save_pretrained(hf)
    # (the converter wants a Whisper tokenizer beside the weights: the bundled one; its
    # vocabulary is then replaced by the multilingual layout)
    transformers.WhisperTokenizerFast.from_pretrained(bundled_whisper()).save_pretrained(hf)
    out = directory / "ct2"
    ctranslate2.converters.TransformersConverter(str(hf)).convert(str(out))
    (out / "vocabulary.json").write_text(json.dumps(tokens))
    vocab = {t: i for i, t in enumerate(tokens)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="w1"))
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(out / "tokenizer.json"))
    return out, vocab


def test_a_multilingual_whisper_is_told_the_language_and_task(tmp_path, whisper, spoken):
    # a multilingual Whisper prompted as an English-only one (no language, no task) wrote
    # the spoken test turns down with WER 1.51 (Whisper base; docs/what-was-tried.md,
    # round 18)
    directory, vocab = _multilingual_whisper(tmp_path)
    recognizer = WhisperRecognizer(directory, voiced_s=None)
    assert recognizer._model.model.is_multilingual
    expected = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert recognizer._prompt == [vocab[t] for t in expected]
    # random weights hear nothing in particular, but the prompt decodes without error
    assert isinstance(recognizer.transcribe(spoken.audio, spoken.sample_rate), str)
    # the bundled English-only tiny.en has neither token in its prompt
    english = whisper._tokenizer
    assert not whisper._model.model.is_multilingual
    assert whisper._prompt == [english.sot, english.no_timestamps]
