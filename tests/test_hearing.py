"""The tiny Conductor's hearing: real PocketSphinx writes spoken turns down for the Thinker."""

import dataclasses

import numpy as np
import pytest
from micro_world import micro_world, one_torch_thread

from mavid.conductor.hearing import HEARING_CONFIG_NAME, Heard, Hearing, HearingConfig
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.data.domain import INTENTS, domain_corpus, known_corpus, paraphrase_split
from mavid.data.speech import synthesize
from mavid.data.visitor_turns import TurnsConfig
from mavid.eval.conductor import run_conductor
from mavid.interfaces import UserTurn
from mavid.train.data import iter_samples
from mavid.train.stage1 import ConductorTask, examples_of, stage1_config

SR = 16_000


@pytest.fixture(scope="module")
def hearing() -> Hearing:
    return Hearing(HearingConfig(corpus=tuple(known_corpus())))


def _spoken(text: str) -> UserTurn:
    frames = (np.full((32, 32, 3), 90, np.uint8),) * 2
    return UserTurn(audio=synthesize(text, sample_rate=SR).audio, audio_sample_rate=SR,
                    video=frames)  # fmt: skip


def test_the_known_corpus_leaves_the_held_out_questions_out():
    known = set(known_corpus())
    for intent in INTENTS:
        for k, p in enumerate(intent.paraphrases):
            assert (p in known) == (paraphrase_split(intent, k) != "test"), p
    assert known < set(domain_corpus())


@pytest.mark.parametrize(("question", "word"), [("Where are the toilets?", "toilet"),
                                                ("Is there wifi here?", "wifi")])  # fmt: skip
def test_a_spoken_question_becomes_its_words(hearing, question, word):
    turn = _spoken(question)
    heard = hearing.apply(turn)
    assert word in heard.text.split() or word + "s" in heard.text.split(), heard.text
    assert heard.audio is None and heard.video == turn.video  # the camera stays
    kept = Hearing(dataclasses.replace(hearing.config, keep_audio=True)).apply(turn)
    assert kept.text == heard.text and kept.audio is turn.audio


def test_typed_silent_and_empty_turns_come_back_as_they_are(hearing):
    typed = UserTurn(text="Where is the cafe?", audio=np.zeros(SR, np.float32))
    assert hearing.apply(typed) is typed
    silent = UserTurn(audio=np.zeros(SR, np.float32), audio_sample_rate=SR)
    assert hearing.apply(silent) is silent  # nothing heard: the Thinker gets the audio
    assert hearing.apply(UserTurn()) == UserTurn()
    with pytest.raises(ValueError, match="NaN"):
        hearing.apply(UserTurn(audio=np.full(SR, np.nan, np.float32)))
    # the Thinker's checks hold before the audio is replaced by its words
    with pytest.raises(ValueError, match="float"):
        hearing.apply(UserTurn(audio=np.ones(SR, np.int16)))
    with pytest.raises(ValueError, match="audio_sample_rate"):
        hearing.apply(UserTurn(audio=np.ones(SR, np.float32), audio_sample_rate=0))


def test_the_config_is_checked_and_saved_beside_the_weights(tmp_path):
    with pytest.raises(ValueError, match="corpus"):
        HearingConfig(lm="domain", corpus=(" ",))
    with pytest.raises(ValueError, match="lm"):
        HearingConfig(lm="klingon", corpus=("hi",))
    assert HearingConfig.load(tmp_path) is None
    config = HearingConfig(corpus=("Where is the cafe?", "Hello."), keep_audio=True)
    config.save(tmp_path)
    assert HearingConfig.load(tmp_path) == config
    (tmp_path / HEARING_CONFIG_NAME).write_text('{"lm": "domain", "corpus": [], "ears": 2}')
    with pytest.raises(ValueError, match="malformed"):
        HearingConfig.load(tmp_path)


def test_the_conductor_reads_what_its_hearing_wrote_down(hearing, tmp_path):
    with one_torch_thread():
        conductor = ThinkerConductor.tiny(seed=3, config=ConductorConfig(do_sample=False))
        conductor.hearing = hearing
        conductor.save_pretrained(tmp_path)
        loaded = ThinkerConductor.from_pretrained(tmp_path, ConductorConfig(do_sample=False))
        assert loaded.hearing is not None and loaded.hearing.config == hearing.config
        turn = _spoken("Where are the toilets?")
        words = hearing.transcribe(turn)
        as_typed = UserTurn(text=words, video=turn.video)
        assert run_conductor(loaded, turn) == run_conductor(loaded, as_typed)
        loaded.hearing = None  # it hears the audio itself: another input, another answer
        assert run_conductor(loaded, turn) != run_conductor(loaded, as_typed)
        # saved again without hearing: none comes back
        loaded.save_pretrained(tmp_path)
        assert ThinkerConductor.from_pretrained(tmp_path).hearing is None


def test_stage_1_trains_on_the_words_heard(tmp_path_factory):
    world = micro_world(tmp_path_factory)
    config = stage1_config(1.0, True, "domain")
    assert config.hearing is not None and config.hearing.corpus == tuple(known_corpus())
    assert stage1_config(1.0, True).hearing is None
    with pytest.raises(ValueError, match="ctc_weight"):
        dataclasses.replace(config, ctc_weight=0.5)
    config = dataclasses.replace(config, turns=TurnsConfig(typed_share=0.0), word_dropout=0.0,
                                 camera_off_share=0.0)  # fmt: skip
    with one_torch_thread():
        examples = examples_of(iter_samples(world))
        task = ConductorTask(examples, batch_size=4, seed=0, config=config,
                             val_examples=examples)  # fmt: skip
        batch = task.batch(0)
    # validation reads the turns as the saved Conductor will: spoken ones written down
    for (turn, _, _), (val, _, _) in zip(examples, task.val_examples, strict=True):
        assert val == task.conductor.hearing.apply(turn)
    tok = task.conductor.tokenizer
    for k in range(4):
        turn = task.turns.turn(k)[0]
        words = task.conductor.hearing.transcribe(turn)
        row = tok.decode(batch["input_ids"][k][batch["attention_mask"][k].bool()])
        if words:  # read, not heard: the words are in the prompt and no audio placeholder
            assert words.replace(" ", "") in row.replace(" ", "") and "<|AUDIO|>" not in row
    assert "input_features" not in batch or batch["input_features"].shape[0] < 4
    saved = task.save(tmp_path_factory.mktemp("heard-conductor"))
    assert HearingConfig.load(saved) == config.hearing


def test_a_typed_turn_is_read_the_same_with_or_without_hearing(hearing):
    with one_torch_thread():
        conductor = ThinkerConductor.tiny(seed=1, config=ConductorConfig(do_sample=False))
        turn = UserTurn(text="Is there wifi here?")
        plain = run_conductor(conductor, turn)
        conductor.hearing = hearing
        assert run_conductor(conductor, turn) == plain


class _CountingHearing(Hearing):
    """The real hearing, counting its transcriptions (and optionally hearing nothing)."""

    def __init__(self, config: HearingConfig, deaf: bool = False) -> None:
        super().__init__(config)
        self.deaf, self.calls = deaf, 0

    def heard(self, turn: UserTurn) -> Heard:
        self.calls += 1
        return Heard("", "") if self.deaf else super().heard(turn)


@pytest.mark.parametrize("deaf", [False, True])
def test_a_spoken_turn_is_written_down_once_and_reported(hearing, deaf):
    from agent.answer import _Heard, _pump_conductor
    from mavid.interfaces import CancelToken, DirectiveDelta, HearingConductor

    with one_torch_thread():
        conductor = ThinkerConductor.tiny(
            seed=3, config=ConductorConfig(do_sample=False, max_new_tokens=8)
        )
        assert isinstance(conductor, HearingConductor) and not conductor.hears
        conductor.hearing = counting = _CountingHearing(hearing.config, deaf)
        assert conductor.hears
        turn = _spoken("Is there wifi here?")
        got: list[object] = []
        _pump_conductor(conductor, turn, CancelToken(), got.append)
        assert counting.calls == 1  # the answer path and the Conductor share one transcription
        heard = [g for g in got if isinstance(g, _Heard)]
        if deaf:  # nothing heard: nothing reported, and the turn asked for again
            assert heard == []
            said = [g for g in got if isinstance(g, DirectiveDelta)]
            reply = ConductorConfig().unheard_reply
            assert [(d.speech, d.motion) for d in said] == [(reply, "tilt")]
        else:
            assert len(heard) == 1 and "wifi" in heard[0].text.split()
            assert got.index(heard[0]) == 0  # before the first delta
        assert all(isinstance(g, (_Heard, DirectiveDelta)) for g in got[:-1])
        # a typed turn is not heard, nor reported
        reported: list[str] = []
        list(conductor.stream(UserTurn(text="Is there wifi here?"), CancelToken(), reported.append))
        assert reported == [] and counting.calls == 1


def test_a_turn_with_no_word_heard_is_asked_for_again(hearing):
    # a cough-like burst the voice activity detector let through: no word is written down, so
    # the Conductor asks to hear it again rather than answer audio the Thinker cannot read
    from mavid.interfaces import Cancelled, CancelToken

    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    burst = (rng.normal(0, 0.3, SR) * np.exp(-(((t - 0.5) / 0.08) ** 2))).astype(np.float32)
    cough = UserTurn(audio=burst, audio_sample_rate=SR)
    with one_torch_thread():
        conductor = ThinkerConductor.tiny(seed=3, config=ConductorConfig(do_sample=False))
        conductor.hearing = _CountingHearing(hearing.config, deaf=True)
        reply = ConductorConfig().unheard_reply
        asked = run_conductor(conductor, cough)
        assert asked.startswith(reply) and "tilt" in asked
        # a cancelled turn is not asked for again
        cancel = CancelToken()
        cancel.cancel()
        with pytest.raises(Cancelled):
            list(conductor.stream(cough, cancel))
        # typed turns and turns whose words were heard are answered by the Thinker
        typed = UserTurn(text="Is there wifi here?", audio=burst)
        assert not run_conductor(conductor, typed).startswith(reply)
        conductor.hearing = hearing
        assert not run_conductor(conductor, _spoken("Is there wifi here?")).startswith(reply)
        # switched off, or where the Thinker also hears the audio: the Thinker answers it
        conductor.hearing = _CountingHearing(hearing.config, deaf=True)
        conductor.config = dataclasses.replace(conductor.config, unheard_reply="")
        assert not run_conductor(conductor, cough).startswith(reply)
        conductor.config = ConductorConfig(do_sample=False)
        keeping = dataclasses.replace(hearing.config, keep_audio=True)
        conductor.hearing = _CountingHearing(keeping, deaf=True)
        assert not run_conductor(conductor, cough).startswith(reply)
