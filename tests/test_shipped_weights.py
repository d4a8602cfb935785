"""The shipped mavid-tiny (mavid/weights/tiny): it loads by default, PocketSphinx recognises
part of its speech as the directive's words, its frames change, its speech is as loud as
speech, its Conductor writes valid directives and answers typed and spoken questions, and
questions it never learnt through its knowledge base.

Fixed samples, fixed seeds: the bounds sit just outside what the shipped
weights measured, so a regression (or random weights) fails them. `run_agent.py eval` prints
the full table; the README says where mavid-tiny falls short of the issue's goals.
"""

from __future__ import annotations

import numpy as np
import pytest

from mavid.avatar import AVATAR_IMAGE, EMBEDDED_WEIGHTS, load_avatar_model
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.creator.stream import MAX_RMS, MavidCreator
from mavid.data.dialogue import typed_form
from mavid.data.domain import INTENTS, paraphrase_split
from mavid.eval.conductor import run_conductor, score_conductor
from mavid.eval.lipsync import load_mouth_regressor, mouth_opening
from mavid.eval.wer import Recognizer, word_error_rate
from mavid.interfaces import UserTurn
from mavid.render import clip_prompts, generate_clips

# Answers of the museum domain, spoken by the shipped voice from its default face.
SENTENCES = (
    "The toilets are downstairs, next to the cloakroom, and on the second floor.",
    "The museum shop is right behind you, next to the main entrance.",
    "You are very welcome. Enjoy your visit.",
)


@pytest.fixture(scope="module")
def model():
    assert (EMBEDDED_WEIGHTS / "creator" / "model.safetensors").is_file(), "weights not shipped"
    return load_avatar_model()


def speak(creator: MavidCreator, text: str, seed: int):
    """The answer as `render` makes it: segmenter prompts, then clips until speech drains."""
    clips = list(generate_clips(creator, clip_prompts(text, None), "", seed=seed))
    frames = np.concatenate([c.frames for c in clips])
    audio = np.concatenate([c.audio for c in clips])
    return frames, audio, clips[0].sample_rate, clips[0].fps


@pytest.fixture(scope="module")
def spoken(model):
    return [speak(model.creator, text, seed) for seed, text in enumerate(SENTENCES)]


def test_the_default_is_the_shipped_model(model):
    creator = model.creator
    assert isinstance(creator, MavidCreator) and creator.model.preset.name == "tiny"
    assert isinstance(model.conductor, ThinkerConductor)
    size = sum(p.stat().st_size for p in EMBEDDED_WEIGHTS.rglob("*") if p.is_file())
    assert size < 60 * 2**20  # tens of MB, in git
    face = creator.new_stream(seed=0).reference_frame()
    assert creator.default_reference is not None and (EMBEDDED_WEIGHTS / AVATAR_IMAGE).is_file()
    assert np.array_equal(face, creator.default_reference)


def test_speech_is_recognised_as_the_directive(spoken):
    asr = Recognizer("domain")
    hyps = [asr.transcribe(audio, rate) for _, audio, rate, _ in spoken]
    wer = word_error_rate(SENTENCES, hyps).wer
    assert wer < WER_BOUND, hyps


def test_frames_change_and_speech_is_as_loud_as_speech(spoken):
    # a still picture gives a frame std of 0; silence or a blast fails the loudness check.
    for frames, audio, _, _ in spoken:
        assert frames.std(axis=0).mean() > FRAME_STD
        rms = float(np.sqrt(np.mean(audio**2)))
        assert 0.02 < rms <= MAX_RMS + 1e-6


def test_the_mouth_opens_and_closes(spoken):
    # the lip-sync meter's mouth regressor reads each frame's mouth opening: over an answer it
    # must open and close (a face that only nods or blinks keeps it flat). Whether it opens
    # in time with the speech is the eval's sync column: mavid-tiny's is weak (README), and a
    # correlation over one short answer is too noisy to bound here
    model = load_mouth_regressor()
    for frames, _, _, _ in spoken:
        opening = mouth_opening(frames, model)
        assert np.percentile(opening, 90) - np.percentile(opening, 10) > MOUTH_RANGE


def test_the_conductor_knows_its_domains_questions(model):
    # the first training paraphrase of every intent that does not depend on the camera, typed.
    # typed without a camera, as a text-only client sends them. The shipped tiny Conductor
    # answers these (training paraphrases) but few held-out ones (README): this checks it
    # writes valid directives and picks the right answer far more often than chance (1/30)
    intents = [i for i in INTENTS if not i.visual]
    questions = [
        typed_form(
            next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "train"),
            np.random.default_rng(0),
        )
        for i in intents
    ]
    conductor = ThinkerConductor.from_pretrained(
        EMBEDDED_WEIGHTS / "conductor", ConductorConfig(do_sample=False)
    )
    predictions = [run_conductor(conductor, UserTurn(text=q)) for q in questions]
    names = [i.name for i in intents]
    score = score_conductor(predictions, names, ["none"] * len(names), [""] * len(names))
    assert score.format_validity >= 0.9
    assert score.intent_accuracy >= CONDUCTOR_BOUND, list(zip(questions, predictions, strict=True))


def test_a_calls_worth_of_camera_frames_does_not_unsettle_the_conductor(model):
    # the agent sends each turn its last 4 s of camera, 8 frames at 2 fps; the Thinker learnt
    # from turns of 4, and with 8 it used to repeat a word ("ThereThereThere…")
    intents = [i for i in INTENTS if not i.visual]
    questions = [
        next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "train")
        for i in intents
    ]
    rng = np.random.default_rng(0)
    camera = tuple(rng.integers(0, 255, (84, 112, 3), dtype=np.uint8) for _ in range(8))
    conductor = model.conductor
    assert conductor.inputs_config.max_frames == 4
    long_turns = [run_conductor(conductor, UserTurn(text=q, video=camera)) for q in questions]
    short = [run_conductor(conductor, UserTurn(text=q, video=camera[-4:])) for q in questions[:5]]
    assert long_turns[:5] == short
    names = [i.name for i in intents]
    score = score_conductor(long_turns, names, ["none"] * len(names), [""] * len(names))
    assert score.format_validity >= 0.9
    assert score.intent_accuracy >= CONDUCTOR_BOUND, list(zip(questions, long_turns, strict=True))


def test_the_conductor_answers_the_same_questions_spoken(model):
    # the same questions said by the default espeak voice (no camera): its hearing writes them
    # down (its ear, known questions first; else Whisper), the Thinker reads the words.
    from mavid.data.speech import synthesize

    intents = [i for i in INTENTS if not i.visual]
    questions = [
        next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "train")
        for i in intents
    ]
    conductor = model.conductor
    assert isinstance(conductor, ThinkerConductor) and conductor.hearing is not None
    turns = [
        UserTurn(audio=synthesize(q, sample_rate=16_000).audio, audio_sample_rate=16_000)
        for q in questions
    ]
    predictions = [run_conductor(conductor, t) for t in turns]
    names = [i.name for i in intents]
    score = score_conductor(predictions, names, ["none"] * len(names), [""] * len(names))
    assert score.format_validity >= 0.9
    assert score.intent_accuracy >= SPOKEN_BOUND, list(zip(questions, predictions, strict=True))


def test_whispers_misheard_words_are_read_as_the_known_question_it_nearly_heard(model):
    # known questions said by two robotic espeak variants, heard by Whisper alone (as a
    # person's voice is, or one the ear is unsure of): where its best words miss a word the
    # domain has ("is their power king"), the Thinker reads the alternative of its beam that
    # is nearly a known question ("Is there parking?"); no turn is read worse than heard
    import dataclasses

    from mavid.conductor.format import plain_words
    from mavid.conductor.hearing import Hearing
    from mavid.data.speech import Voice, synthesize

    said = [
        ("Is there parking?", Voice("en-us+rob", rate=170, pitch=40)),
        ("Is there wifi?", Voice("en-us+rob", rate=170, pitch=40)),
        ("Can I eat in the galleries?", Voice("en-us+rob", rate=170, pitch=40)),
        ("Where is the cloakroom?", Voice("en+anika", rate=175, pitch=50)),
        ("Can I bring my dog?", Voice("en+anika", rate=175, pitch=50)),
        ("I don't feel well.", Voice("en+anika", rate=175, pitch=50)),
    ]
    shipped = ThinkerConductor.from_pretrained(EMBEDDED_WEIGHTS / "conductor")
    assert shipped.hearing.config.whisper_alternatives > 0
    config = dataclasses.replace(shipped.hearing.config, ear=False, ear_check=False,
                                 ear_words=False, ear_second_opinion=0.0)  # fmt: skip
    shipped.hearing = Hearing(config, directory=EMBEDDED_WEIGHTS / "conductor")
    corrected = 0
    for question, voice in said:
        turn = UserTurn(audio=synthesize(question, voice, 16_000).audio, audio_sample_rate=16_000)
        heard = shipped.hearing.heard(turn)
        read = shipped.prepare(turn).text
        assert read in (heard.words, *heard.alternatives)
        wer = [word_error_rate([plain_words(question)], [plain_words(t)]).wer
               for t in (heard.words, read)]  # fmt: skip
        assert wer[1] <= wer[0], (question, heard, read)
        corrected += wer[0] > 0 and wer[1] == 0
    assert corrected >= ALTERNATIVES_CORRECTED_BOUND


def test_the_conductors_ear_hears_held_out_voices_better_than_its_recognizer(model):
    # every camera-free intent's held-out question, spoken by the world's held-out (test)
    # voices, no camera: the ear (trained on the other espeak voices) writes them down better
    # than Whisper (trained on people) alone; without the ear, no more are answered
    from mavid.data.dialogue import voice_pool
    from mavid.data.speech import Voice, synthesize

    intents = [i for i in INTENTS if not i.visual]
    voices = voice_pool("test", "user") + voice_pool("test", "avatar")
    turns = [
        UserTurn(
            audio=synthesize(q, Voice(name=voices[n % len(voices)]), sample_rate=16_000).audio,
            audio_sample_rate=16_000,
        )
        for n, q in enumerate(
            next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "test")
            for i in intents
        )
    ]
    conductor = ThinkerConductor.from_pretrained(
        EMBEDDED_WEIGHTS / "conductor", ConductorConfig(do_sample=False)
    )
    assert conductor.hearing is not None and conductor.hearing.ear is not None
    assert conductor.hearing.check_ear is not None  # (round 12: a second ear must be as sure)
    names = [i.name for i in intents]

    def accuracy() -> float:
        predictions = [run_conductor(conductor, t) for t in turns]
        return score_conductor(predictions, names, ["none"] * len(names), [""] * len(names))

    with_ear = accuracy()
    search, conductor.hearing.word_search = conductor.hearing.word_search, None
    letters = accuracy()  # the ear's letters as they come, not read as known words
    conductor.hearing.word_search = search
    conductor.hearing.ear = None  # Whisper alone
    without = accuracy()
    assert with_ear.format_validity >= 0.9
    assert with_ear.intent_accuracy >= EAR_BOUND > letters.intent_accuracy, (letters,)
    # (round 13: Whisper alone, its near alternatives read and the classifier reading n-grams,
    # comes within a question of the ear here, 25 of 30 against 26)
    assert with_ear.intent_accuracy >= without.intent_accuracy, (with_ear, without)


def test_the_ear_hears_known_questions_in_voices_it_never_heard_as_those_questions(model):
    # the first training question of every camera-free intent, and its held-out question, each
    # said by the world's held-out voices: the ear finds the known questions among all the
    # Conductor knows (written down in plain words, as the Thinker reads them), and takes no
    # held-out question for a known one
    from mavid.conductor.format import plain_words
    from mavid.data.dialogue import voice_pool
    from mavid.data.speech import Voice, synthesize

    voices = voice_pool("test", "user") + voice_pool("test", "avatar")
    intents = [i for i in INTENTS if not i.visual]

    def said(split: str) -> list[tuple[str, UserTurn]]:
        questions = [
            next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == split)
            for i in intents
        ]
        return [
            (q, UserTurn(audio=synthesize(q, Voice(name=voices[n % len(voices)]),
                                          sample_rate=16_000).audio, audio_sample_rate=16_000))
            for n, q in enumerate(questions)
        ]  # fmt: skip

    hearing = model.conductor.hearing
    assert hearing.config.known and hearing.ear is not None
    known = {plain_words(q) for q in hearing.config.known}
    heard = [hearing.transcribe(t) == plain_words(q) for q, t in said("train")]
    assert np.mean(heard) >= KNOWN_HEARD_BOUND
    assert not any(hearing.transcribe(t) in known for _, t in said("test"))


def test_the_conductor_reads_questions_it_never_learnt_as_known_ones():
    # every camera-free intent's held-out question (test split: never trained on, nor in the
    # knowledge base), typed as written, no camera: the knowledge base gives the Thinker the
    # known question nearest; without it the Thinker answers fewer than half of them
    intents = [i for i in INTENTS if not i.visual]
    questions = [
        next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "test")
        for i in intents
    ]
    conductor = ThinkerConductor.from_pretrained(
        EMBEDDED_WEIGHTS / "conductor", ConductorConfig(do_sample=False)
    )
    assert conductor.knowledge is not None
    names = [i.name for i in intents]

    def accuracy() -> float:
        predictions = [run_conductor(conductor, UserTurn(text=q)) for q in questions]
        return score_conductor(predictions, names, ["none"] * len(names), [""] * len(names))

    with_knowledge = accuracy()
    conductor.knowledge = None
    without = accuracy()
    assert with_knowledge.format_validity >= 0.9
    assert with_knowledge.intent_accuracy >= HELD_OUT_BOUND > without.intent_accuracy


QUESTIONS_FROM_ELSEWHERE = (
    "Who invented the telephone?",
    "Can you help me write some Python code?",
    "What is the square root of sixty four?",
    "Which planet is closest to the sun?",
    "Do you believe in ghosts?",
    "Who is your favourite singer?",
    "How many players are on a football team?",
    "What is the boiling point of water?",
    "Are you a robot?",
    "Tell me a story about a dragon.",
    "What is the best programming language?",
    "How do I lose weight?",
    "Is it going to snow on Friday?",
    "Book me a table for two at eight.",
    "What's the news today?",
    "Do you love me?",
)


def test_questions_from_elsewhere_are_answered_with_what_the_desk_can_help_with():
    # asked of a museum's front desk, none of these is the museum's (written for this test,
    # after the knowledge base's setting was chosen): its nearest entry's answer would have
    # been a wrong one ("Are you a robot?" -> the opening hours); most are taken for what
    # people say elsewhere and answered so, the rest (nearest to an entry: "What's the news
    # today?" -> what is new to see; or to first aid, never taken: "How many players are on a
    # football team?") as before
    from mavid.data.domain import ELSEWHERE_REPLY

    elsewhere = QUESTIONS_FROM_ELSEWHERE
    conductor = ThinkerConductor.from_pretrained(
        EMBEDDED_WEIGHTS / "conductor", ConductorConfig(do_sample=False)
    )
    assert conductor.knowledge is not None
    answers = [run_conductor(conductor, UserTurn(text=q)) for q in elsewhere]
    told = [q for q, a in zip(elsewhere, answers, strict=True) if a.startswith(ELSEWHERE_REPLY)]
    assert len(told) >= ELSEWHERE_BOUND, told
    # the museum's own questions never are: every training and held-out question, as written
    asked = [p for i in INTENTS for p in i.paraphrases]
    assert not [q for q in asked if conductor.knowledge.from_elsewhere(q)]
    # nor what visitors tell a front desk (written for this test), someone unwell least of all:
    # chit-chat has "I'm not feeling well" too (of 25 written, one, "Can I talk to a
    # manager?", which no entry answers, is taken for elsewhere and left out here)
    told_the_desk = (
        "I'm not feeling well",
        "I have a fever",
        "I feel dizzy",
        "My head hurts",
        "I think I'm going to faint",
        "My son is lost",
        "I can't find my daughter",
        "I lost my wallet",
        "Somebody stole my bag",
        "My internet is not working",
        "The wifi doesn't work",
        "My phone battery is dead",
        "I'm hungry",
        "I'm thirsty",
        "Where can I get a drink of water?",
        "I need to sit down",
        "It's too cold in here",
        "Is there a lift?",
        "My audio guide isn't working",
        "I can't hear anything from the audio guide",
        "The toilet is blocked",
        "I want to complain",
        "How much do you charge for students?",
        "I forgot my ticket at home",
    )
    assert not [q for q in told_the_desk if conductor.knowledge.from_elsewhere(q)]


def test_the_requests_the_base_learns_elsewhere_from_are_kept_apart_from_those_it_is_measured_on():
    # (as the test's held-out questions are from the knowledge base: no text spelt like one,
    # rapidfuzz ratio >= 75, or meaning nearly the same, cosine >= 0.9)
    from pathlib import Path

    from rapidfuzz import fuzz

    from mavid.conductor.knowledge import Knowledge, KnowledgeConfig
    from mavid.data.elsewhere import elsewhere_requests

    measured = Path(__file__).parents[1] / "benchmarks" / "questions_from_elsewhere.txt"
    held = [*measured.read_text().splitlines(), *QUESTIONS_FROM_ELSEWHERE]
    knowledge = Knowledge.shared(KnowledgeConfig.load(EMBEDDED_WEIGHTS / "conductor"))
    vectors = np.stack([knowledge.vector(t) for t in held])
    requests = elsewhere_requests()
    assert len(requests) >= 250
    cosines = np.stack([knowledge.vector(r) for r in requests]) @ vectors.T
    near = [
        (r, held[int(np.argmax(c))])
        for r, c in zip(requests, cosines, strict=True)
        if c.max() >= 0.9 or max(fuzz.ratio(r.lower(), h.lower()) for h in held) >= 75
    ]
    assert not near


# Bounds just outside what the shipped weights measured on these samples (fixed seeds):
# WER 0.47 with the expected speech (drawn codes: 0.69, from each frame's first codebook as
# from all 8; random weights, silence or noise: 1.0), frame std 1.89-2.26, mouth opening
# p90-p10 0.23-0.33 (a still face: 0), Conductor 1.0 on the typed questions without video,
# 1.0 on the same questions spoken (without its hearing 0.07; before the ear checked the
# known questions, 0.6), 1.0 typed as written with 8 camera frames (4 read), 1.0 on their
# held-out questions typed (without its knowledge base 0.47; round 8's base, without the other
# ways of asking and the classifier, 0.83), 0.87 on those spoken by held-out voices (the ear's
# letters not read as words, round 9: 0.63; without its ear, Whisper alone 0.83 (round 12:
# 0.7), PocketSphinx alone 0.1; round 8: 0.47, round 7's ear 0.37); the ear heard all the
# known questions said by held-out voices as those questions, and none of the held-out ones
# as a known question; of six known questions Whisper misheard in two robotic variants, its
# beam's alternatives read right 6 (without them 0).
WER_BOUND = 0.7
FRAME_STD = 1.5
MOUTH_RANGE = 0.12
CONDUCTOR_BOUND = 0.8  # chance is 0.03
SPOKEN_BOUND = 0.9
KNOWN_HEARD_BOUND = 0.9
HELD_OUT_BOUND = 0.95
EAR_BOUND = 0.8
ALTERNATIVES_CORRECTED_BOUND = 4
ELSEWHERE_BOUND = 9  # of 16 questions from elsewhere, 10 taken for such (without: none)


def test_the_ears_bent_words_get_a_second_opinion(model):
    # questions from outside the museum said by the default voice, which the ear is sure of:
    # its word search knows only the knowledge base's words and word pairs and bends some
    # ("who printed the selling"); where its words fit its own hearing badly, Whisper writes
    # the turn down too, and its words are read where they fit the ear's hearing better
    import dataclasses

    from mavid.conductor.format import plain_words
    from mavid.conductor.hearing import Hearing
    from mavid.data.speech import synthesize

    said = (
        "Where is the nearest train station?",
        "Do you sell umbrellas?",
        "I am looking for my friend.",
        "Who painted the ceiling?",
        "When does the next bus leave?",
        "Where can I charge my phone?",
        "Is the museum open on Mondays?",
    )
    shipped = model.conductor.hearing
    assert shipped.config.ear_second_opinion > 0
    alone = Hearing(
        dataclasses.replace(shipped.config, ear_second_opinion=0.0),
        shipped.ear,
        EMBEDDED_WEIGHTS / "conductor",
        shipped.check_ear,
    )
    corrected = 0
    for question in said:
        turn = UserTurn(
            audio=synthesize(question, sample_rate=16_000).audio, audio_sample_rate=16_000
        )
        ear, second = alone.heard(turn), shipped.heard(turn)
        assert ear.by == "ear", ear  # the ear is sure of this voice
        wer = [word_error_rate([plain_words(question)], [plain_words(h.words)]).wer
               for h in (ear, second)]  # fmt: skip
        assert wer[1] <= wer[0], (question, ear, second)
        if wer[0] == 0:
            assert second == ear  # words the ear got right stay its own
        corrected += wer[0] > 0 and wer[1] == 0 and second.by == "whisper"
    assert corrected >= 3


def test_whisper_told_the_ears_words_writes_down_the_voices_it_garbles(model):
    # every camera-free intent's held-out question said by held-out espeak voices; those the
    # ears are unsure of, or whose words fit their hearing badly, go to Whisper, which garbles
    # some ("Can I pop in your mind?"). Told the ear's words as what came before, it writes
    # them down closer to what was said ("Can i park nearby?"), and its words are read where
    # they fit the ear's hearing better
    import dataclasses

    from mavid.conductor.format import plain_words
    from mavid.conductor.hearing import Hearing
    from mavid.data.speech import Voice, synthesize

    questions = [
        next(p for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "test")
        for i in INTENTS
        if not i.visual
    ]
    voices = (
        Voice("en+anika", rate=175, pitch=50),
        Voice("en-gb-x-rp+anika", rate=170, pitch=60),
        Voice("en-us+rob", rate=170, pitch=40),
        Voice("en+m7", rate=175, pitch=60),
    )
    shipped = model.conductor.hearing
    assert shipped.config.ear_words_prompt
    untold = Hearing(
        dataclasses.replace(shipped.config, ear_words_prompt=False),
        shipped.ear,
        EMBEDDED_WEIGHTS / "conductor",
        shipped.check_ear,
    )
    errors, better, worse = np.zeros(2), 0, 0
    for voice in voices:
        for question in questions:
            turn = UserTurn(
                audio=synthesize(question, voice, 16_000).audio, audio_sample_rate=16_000
            )
            alone, told = untold.heard(turn), shipped.heard(turn)
            if "whisper" not in (alone.by, told.by):
                assert told == alone  # (the ear's words, trusted: heard as before)
                continue
            wer = np.array([word_error_rate([plain_words(question)], [plain_words(h.words)]).wer
                            for h in (alone, told)])  # fmt: skip
            errors += wer
            better += wer[1] < wer[0]
            worse += wer[1] > wer[0]
    # (measured: 41 turns Whisper wrote either way, their WER summed 21.5 -> 10.5, 23 written
    # better, 1 worse)
    assert errors[1] <= 0.7 * errors[0], errors
    assert better >= 15 and worse <= 3, (better, worse)
