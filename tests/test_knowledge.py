"""The tiny Conductor's knowledge: a question it was never taught read as the known one nearest."""

import dataclasses
import json

import numpy as np
import pytest
from micro_world import one_torch_thread

from mavid.conductor.format import plain_words
from mavid.conductor.knowledge import (
    KNOWLEDGE_CONFIG_NAME,
    MAX_QUERY_CHARS,
    Knowledge,
    KnowledgeConfig,
    KnowledgeEntry,
)
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.data.dialogue import typed_form
from mavid.data.domain import INTENTS, paraphrase_split
from mavid.eval.conductor import run_conductor
from mavid.interfaces import UserTurn
from mavid.train.export import domain_knowledge

ENTRIES = (
    KnowledgeEntry(("Where is the first aid room?", "I feel sick."), ("The nurse is downstairs.",)),
    KnowledgeEntry(("Where is the cafe?", "Can I get a coffee?"), ("The cafe sells sandwiches.",)),
    KnowledgeEntry(("Can I bring my dog?",), ("Only guide dogs may come in.",)),
    KnowledgeEntry(("What time do you open?", "When are you open?"), ("We open at nine.",)),
)


@pytest.fixture(autouse=True)
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return Knowledge(KnowledgeConfig(ENTRIES))


def test_a_new_question_is_found_by_its_sense(knowledge):
    # words the base never has, near an entry by their sense (and by its answer's words)
    assert knowledge.nearest("I injured my hand")[0] in ENTRIES[0].questions
    assert knowledge.nearest("I would like a sandwich")[0] in ENTRIES[1].questions
    question, score = knowledge.nearest("is my puppy welcome")
    assert question == "Can I bring my dog?" and score < 0.9
    # the best question of the entry, not its first
    assert knowledge.nearest("when are you open") == ("When are you open?", pytest.approx(1.0))
    assert knowledge.nearest("") is None and knowledge.nearest("?! ...") is None


def test_typed_forms_of_a_known_question_are_still_that_question(knowledge):
    # apostrophes and case do not count; a dropped letter is read as the base's word
    for typed in (
        "where is the cafe",
        "WHERE IS THE CAFE!",
        "wher is the cafe",
        "can i brng my dog",
    ):
        assert knowledge.nearest(typed)[1] > 0.95, typed
    assert knowledge.nearest("cant i") == knowledge.nearest("can't I")
    # short unknown words are not respelt into known ones
    assert knowledge._respelt("th") == "th" and knowledge._respelt("cofee") == "coffee"


def test_read_keeps_known_words_and_replaces_new_ones(knowledge):
    frames = (np.zeros((4, 4, 3), np.uint8),)
    known = UserTurn(text="wher is the cafe", video=frames, video_fps=2.0)
    assert knowledge.read(known) is known  # the Thinker reads its own typed forms best
    as_typed = knowledge.read(UserTurn(text="Where is the Cafe?"))
    assert as_typed.text == "where is the cafe"  # its own words, plain as it was taught
    new = UserTurn(text="is my puppy welcome", video=frames, video_fps=2.0)
    read = knowledge.read(new)
    assert knowledge.lookup(new.text) == "Can I bring my dog?"
    assert read.text == "can i bring my dog"  # in plain words, as the Thinker was taught
    assert read.video == new.video and read.video_fps == new.video_fps  # the camera stays
    spoken = UserTurn(audio=np.zeros(1600, np.float32))
    assert knowledge.read(spoken) is spoken  # no words: nothing to look up
    every = Knowledge(KnowledgeConfig(ENTRIES, keep_words_above=2.0, plain=False))
    assert every.read(known).text == "Where is the cafe?"  # as written


def test_hostile_text_is_read_within_bounds(knowledge):
    huge = "dog " * 100_000 + "cafe coffee sandwich"
    assert knowledge.nearest(huge)[0] == "Can I bring my dog?"  # only the first characters count
    assert len(knowledge.vector("x" * (10 * MAX_QUERY_CHARS))) == knowledge.table.dim
    assert knowledge.nearest("\x00\u202e 🙂 -- ?") is None  # no word in it
    assert knowledge.read(UserTurn(text="\x00\u202e 🙂")).text == "\x00\u202e 🙂"


def test_the_config_saves_loads_and_refuses_bad_files(tmp_path):
    config = KnowledgeConfig(ENTRIES, keep_words_above=0.8, alternative_above=0.5)
    config.save(tmp_path)
    assert KnowledgeConfig.load(tmp_path) == config
    assert KnowledgeConfig.load(tmp_path / "none") is None
    (tmp_path / KNOWLEDGE_CONFIG_NAME).write_text('{"entries": [{"answers": []}]}')
    with pytest.raises(ValueError, match="malformed"):
        KnowledgeConfig.load(tmp_path)
    (tmp_path / KNOWLEDGE_CONFIG_NAME).write_text("not json")
    with pytest.raises(ValueError, match="malformed"):
        KnowledgeConfig.load(tmp_path)
    with pytest.raises(ValueError, match="keep_words_above"):
        KnowledgeConfig(ENTRIES, keep_words_above=3.0)
    with pytest.raises(ValueError, match="respell_above"):
        KnowledgeConfig(ENTRIES, respell_above=101.0)
    with pytest.raises(ValueError, match="plain"):
        KnowledgeConfig(ENTRIES, plain="yes")
    with pytest.raises(ValueError, match="alternative_above"):
        KnowledgeConfig(ENTRIES, alternative_above=float("nan"))
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="classifier_ngrams"):
            KnowledgeConfig(ENTRIES, classifier_ngrams=bad)
    with pytest.raises(ValueError, match="classify_all"):
        KnowledgeConfig(ENTRIES, classify_all="yes")
    # a base whose texts hold no word at all still loads (its n-grams have nothing to read)
    wordless = (KnowledgeEntry(("?",)), KnowledgeEntry(("!",)))
    assert Knowledge(KnowledgeConfig(wordless, classifier_ngrams=2.0)).nearest("hi")[0] in "?!"
    with pytest.raises(ValueError, match="at least one"):
        KnowledgeConfig(())
    with pytest.raises(ValueError, match="non-empty question"):
        KnowledgeEntry((" ",))


def test_of_a_recognizers_ways_of_hearing_the_one_nearly_a_known_question_is_read(knowledge):
    misheard = "can i bring my dock"  # (Whisper's best words for a voice it hears badly)
    found = knowledge.nearest(misheard)[1]
    assert knowledge.likeliest(misheard, []) == misheard
    chosen = knowledge.likeliest(misheard, ["can i ring my dock", "can i bring my dog"])
    assert chosen == "can i bring my dog"
    # an alternative matching worse than the best words, or below alternative_above, is not
    assert knowledge.likeliest("can i bring my dog", ["can i ring my dock"]) == (
        "can i bring my dog"
    )
    strict = Knowledge(KnowledgeConfig(ENTRIES, alternative_above=1.01))
    assert strict.likeliest(misheard, ["can i bring my dog"]) == misheard
    # words far from every question (a person talking of something else) keep their own
    # words where no alternative is nearly a known question
    far = "he was not an ill disposed young man"
    assert knowledge.likeliest(far, ["he was not an old disposed young man"]) == far
    assert knowledge.nearest("can i bring my dog")[1] > found
    assert knowledge.likeliest("", ["can i bring my dog"]) == "can i bring my dog"
    assert knowledge.likeliest(misheard, ["", "?!"]) == misheard


def test_the_domains_knowledge_holds_no_held_out_question():
    config = domain_knowledge()
    held_out = {
        p for i in INTENTS for k, p in enumerate(i.paraphrases) if paraphrase_split(i, k) == "test"
    }
    known = {q for e in config.entries for q in e.questions}
    assert len(config.entries) == len(INTENTS) and not known & held_out
    assert all(e.answers for e in config.entries)
    # every held-out question is read as a known one (none is near enough to keep its words)
    k = Knowledge(config)
    assert all(k.lookup(q) in known for q in held_out)
    # a word the base never had does not outweigh the ones it has ("keyboard" once made this
    # a question about a thing held up to the camera)
    greetings = config.entries[[i.name for i in INTENTS].index("greeting")].questions
    for text in ("hello from the keyboard", "good morning from Berlin"):
        assert k.lookup(text) in greetings, text


def test_a_conductor_with_knowledge_reads_new_questions_as_known_ones_and_ships_it(tmp_path):
    conductor = ThinkerConductor.tiny(
        seed=0, config=ConductorConfig(do_sample=False, max_new_tokens=6)
    )
    turn = UserTurn(text="is my puppy welcome")
    assert conductor.read_as_known(turn) is turn
    seen = []  # the text the Thinker's prompt is made of
    encode = conductor.encoder.encode_prompt
    conductor.encoder.encode_prompt = lambda t, *a, **k: seen.append(t.text) or encode(t, *a, **k)
    blind = run_conductor(conductor, turn)
    conductor.knowledge = Knowledge(KnowledgeConfig(ENTRIES))
    known = run_conductor(conductor, turn)
    assert seen == ["is my puppy welcome", "can i bring my dog"]
    assert known == run_conductor(conductor, UserTurn(text="can i bring my dog"))
    del conductor.encoder.encode_prompt
    conductor.save_pretrained(tmp_path)
    loaded = ThinkerConductor.from_pretrained(tmp_path, conductor.config)
    assert loaded.knowledge is not None and loaded.knowledge.config == conductor.knowledge.config
    assert run_conductor(loaded, turn) == known
    loaded.knowledge = None  # saved again without: no stale knowledge file is loaded
    loaded.save_pretrained(tmp_path)
    assert not (tmp_path / KNOWLEDGE_CONFIG_NAME).exists()
    again = ThinkerConductor.from_pretrained(tmp_path, conductor.config)
    assert again.knowledge is None and run_conductor(again, turn) == blind
    (tmp_path / KNOWLEDGE_CONFIG_NAME).write_text(json.dumps({"entries": "nope"}))
    with pytest.raises(ValueError, match="malformed"):
        ThinkerConductor.from_pretrained(tmp_path)


def test_a_conductor_says_which_known_question_it_read_a_turn_as():
    from mavid.interfaces import CancelToken, UnderstandingConductor

    conductor = ThinkerConductor.tiny(
        seed=0, config=ConductorConfig(do_sample=False, max_new_tokens=2)
    )
    assert isinstance(conductor, UnderstandingConductor) and not conductor.understands
    conductor.knowledge = Knowledge(KnowledgeConfig(ENTRIES))
    assert conductor.understands
    told: list[str] = []
    for text in ("is my puppy welcome", "Can I bring my dog?", ""):
        turn = UserTurn(text=text) if text else UserTurn(audio=np.zeros(1600, np.float32))
        list(conductor.stream(turn, CancelToken(), on_understood=told.append))
    assert told == ["Can I bring my dog?"]  # its own known words, or none: nothing to tell


def test_letters_count_only_as_much_as_the_words_are_no_words():
    spelt = Knowledge(KnowledgeConfig(ENTRIES, spelling_weight=1.0))
    plain = Knowledge(KnowledgeConfig(ENTRIES))
    # an ear's letters, run together and misspelt: no word vector finds them, the letters do
    garbled = "kanaibrinmaidog"
    assert spelt.nearest(garbled)[0] == "Can I bring my dog?"
    assert plain.nearest(garbled)[0] != "Can I bring my dog?"
    # words that are all English words: the letters do not count, the same reading and score
    for text in ("is my puppy welcome", "I feel unwell", "Can I bring my dog?"):
        assert spelt.nearest(text) == plain.nearest(text)
    with pytest.raises(ValueError, match="spelling_weight"):
        KnowledgeConfig(ENTRIES, spelling_weight=1.5)


def test_other_ways_of_asking_find_their_entry_but_the_thinker_gets_its_own_question():
    cafe = KnowledgeEntry(ENTRIES[1].questions, ENTRIES[1].answers, ("Is the Blue Parrot open?",))
    knowledge = Knowledge(KnowledgeConfig((ENTRIES[0], cafe, *ENTRIES[2:])))
    without = Knowledge(KnowledgeConfig(ENTRIES))
    # the cafe's name is found only by the other way of asking (else: the opening hours)
    assert without.nearest("is the blue parrot open")[0] not in cafe.questions
    # which matches itself exactly, yet never reaches the Thinker: the turn is read as the
    # entry's own question nearest to it, and is never kept as it is (it was never taught)
    question, score = knowledge.nearest("is the blue parrot open")
    assert question in cafe.questions and score < 0.9
    assert knowledge.read(UserTurn(text="Is the Blue Parrot open?")).text == plain_words(question)
    with pytest.raises(ValueError, match="strings"):
        KnowledgeEntry(("Can I bring my dog?",), also=("ok", 3))


def test_an_entrys_letters_count_by_its_best_spelt_texts(tmp_path):
    # many ways of asking spelt unlike the ear's letters drown the one spelt like them in a mean
    many = tuple(f"Is there a place where people may sit number {n}?" for n in range(12))
    entries = (
        KnowledgeEntry(("Can I bring my dog?", *many[:1]), also=many[1:]),
        KnowledgeEntry(("Where is the cafe?", "Can I get a coffee?")),
    )
    garbled = "kanaibrinmaidog"
    best = Knowledge(KnowledgeConfig(entries, spelling_weight=1.0, spelling_best=1))
    mean = Knowledge(KnowledgeConfig(entries, spelling_weight=1.0, spelling_best=100))
    assert best.nearest(garbled)[0] == "Can I bring my dog?"
    assert mean.nearest(garbled)[0] != "Can I bring my dog?"
    config = KnowledgeConfig(entries, spelling_best=2)
    config.save(tmp_path)
    assert KnowledgeConfig.load(tmp_path) == config
    (tmp_path / KNOWLEDGE_CONFIG_NAME).write_text(
        json.dumps({"entries": [{"questions": ["Hi?"], "also": "Hello?"}]})
    )
    with pytest.raises(ValueError, match=r"malformed.*list of texts"):
        KnowledgeConfig.load(tmp_path)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="spelling_best"):
            KnowledgeConfig(entries, spelling_best=bad)


def test_the_classifier_reading_ngrams_finds_more_ways_of_asking_it_never_held():
    # the domain's base with every 8th of each entry's other ways of asking left out: those
    # are found more often where the classifier reads the texts' n-grams beside their vectors
    from dataclasses import replace

    config = domain_knowledge()
    assert config.classifier_ngrams > 0
    held = [(k, e.also[i]) for k, e in enumerate(config.entries) for i in range(3, len(e.also), 8)]
    left = {text for _, text in held}
    entries = tuple(
        replace(e, also=tuple(t for t in e.also if t not in left)) for e in config.entries
    )

    def found(knowledge: Knowledge) -> int:
        return sum(knowledge.nearest(text)[0] in entries[k].questions for k, text in held)

    with_ngrams = found(Knowledge(replace(config, entries=entries, classify_all=False)))
    without = found(
        Knowledge(replace(config, entries=entries, classifier_ngrams=0.0, classify_all=False))
    )
    assert with_ngrams >= without + 0.03 * len(held), (with_ngrams, without, len(held))
    # typed as the world types (dropped letters: words the base lacks), they are found more
    # often where the classifier reads every text, not only texts of known words
    rng = np.random.default_rng(0)
    held = [(k, typed_form(text, rng)) for k, text in held]
    assert config.classify_all
    every = found(Knowledge(replace(config, entries=entries)))
    known_words_only = found(Knowledge(replace(config, entries=entries, classify_all=False)))
    assert every >= known_words_only + 0.01 * len(held), (every, known_words_only, len(held))


def test_common_words_are_classified_and_garbled_letters_are_not():
    entries = (
        KnowledgeEntry(("Where is the first aid room?", "I feel sick."), also=("I cut my hand.",)),
        KnowledgeEntry(("Can I bring my dog?",), also=("Are pets allowed?", "My cat too?")),
        *ENTRIES[1:2],
    )
    knowledge = Knowledge(KnowledgeConfig(entries, spelling_weight=1.0))
    mean = Knowledge(KnowledgeConfig(entries, spelling_weight=1.0, classifier_c=0.0))
    assert knowledge._classifier is not None and mean._classifier is None
    for text in ("is my puppy welcome", "i hurt my finger", "a coffee please"):
        probs = knowledge._classifier.predict_proba(knowledge.vector(text)[None].astype(float))[0]
        assert knowledge.nearest(text)[0] in entries[int(np.argmax(probs))].questions, text
    # letters that are no common words are read as before, by the mean cosine and spelling
    for garbled in ("kanaibrinmaidog", "i fel di se", "wher iz th cafy"):
        assert knowledge.nearest(garbled) == mean.nearest(garbled), garbled
    # the best-matching score (whether a turn keeps its words) is the cosine either way
    text = "when are you open"
    assert knowledge.nearest(text)[1] == pytest.approx(mean.nearest(text)[1])
    one = Knowledge(KnowledgeConfig(ENTRIES[2:3]))  # one entry: nothing to classify
    assert one._classifier is None and one.nearest("my puppy")[0] == "Can I bring my dog?"
    for name, bad in (("classifier_c", -1.0), ("classifier_c", float("inf")),
                      ("classifier_words", -5), ("classifier_words", 2.5)):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            KnowledgeConfig(ENTRIES, **{name: bad})


def test_accents_do_not_count():
    # the base spells "café", the ear, the word search and Whisper write "cafe": round 18
    # found the ear's "do you have a cafe shop" read as the museum shop, "cafe" being a word
    # the base never had
    knowledge = Knowledge(
        KnowledgeConfig(
            (
                KnowledgeEntry(("Is there a café?", "Where can I get a coffee?"), ("Yes.",)),
                KnowledgeEntry(("Where is the museum shop?", "Is there a gift shop?"), ("Yes.",)),
                *ENTRIES[2:],
            )
        )
    )
    assert knowledge.nearest("is there a cafe") == ("Is there a café?", pytest.approx(1.0))
    assert knowledge.nearest("IS THERE A CAFÉ") == knowledge.nearest("is there a cafe")
    assert knowledge.nearest("do you have a cafe shop")[0] == "Is there a café?"
    assert knowledge.nearest("naïve question about the gift shop")[0] == "Is there a gift shop?"
    # the Thinker knows "café" only as the base writes it: a turn that drops the accent is
    # handed the known question, one that keeps it keeps its own words, as other turns do
    assert knowledge.lookup("cafe?") == "Is there a café?"
    assert knowledge.lookup("is there a cafe") == "Is there a café?"
    assert knowledge.lookup("is there a café") is None
    assert knowledge.lookup("is there a gift shop") is None


def test_typed_characters_are_read_as_the_plain_ones(knowledge):
    # phones and word processors type "where’s", input methods full-width letters: read as
    # the plain characters, by the knowledge base and in the words the Thinker is handed
    # (full-width, a known question kept its words and the Thinker, which never saw such
    # letters, answered another)
    for typed, plain in (
        ("Can’t I bring my dog?", "Can't I bring my dog?"),
        ("‘Wheres the cafe’", "wheres the cafe"),
        ("ＣＡＮ Ｉ ＢＲＩＮＧ ＭＹ ＤＯＧ？", "can i bring my dog"),
    ):
        assert knowledge.nearest(typed) == knowledge.nearest(plain)
        assert knowledge.as_read(typed) == knowledge.as_read(plain)
    assert knowledge.nearest("Can’t I bring my dog?")[1] > 0.95
    assert plain_words("Can’t I? It’s ʼfineʼ") == "cant i its fine"
    assert plain_words("ｗｈｅｒｅ＇ｓ the ﬁrst café") == "wheres the first café"
    assert knowledge.as_read("What’s this?") == knowledge.as_read("What's this?") == "whats this"


def test_a_three_letter_typo_is_respelt_but_not_two():
    knowledge = Knowledge(KnowledgeConfig(ENTRIES))
    assert knowledge._respelt("wen") == "when"  # a dropped letter
    assert knowledge._respelt("th") == "th" and knowledge._respelt("dgo") == "dgo"


def test_conductors_loaded_with_the_same_base_share_one_fitted_copy():
    from dataclasses import replace

    config = KnowledgeConfig(ENTRIES)
    shared = Knowledge.shared(config)
    assert Knowledge.shared(KnowledgeConfig(ENTRIES)) is shared  # equal config, one copy
    other = Knowledge.shared(replace(config, keep_words_above=0.8))
    assert other is not shared and other.config.keep_words_above == 0.8
    assert shared.nearest("can i bring my dog") == Knowledge(config).nearest("can i bring my dog")


def test_the_spoken_dev_set_is_kept_apart_from_the_base_it_is_heard_with():
    # benchmarks/spoken_dev.py chooses hearing settings on ways of asking the base is left
    # without, as the test's held-out questions are: none of them, nor any other way of
    # asking spelt like one, stays in the base, and none said is spelt like its own entry's
    # questions (another entry's may be: "Where can I see the Van Gogh?" beside the mummy's)
    from rapidfuzz import fuzz

    from mavid.eval.held_apart import left_out

    base = Knowledge.shared(domain_knowledge())
    config, said = left_out(base, 40, np.random.default_rng(0))
    assert 30 <= len(said) <= 40 and len(config.entries) == len(base.config.entries)
    also = [t for e in config.entries for t in e.also]
    assert not {t for _, t in said} & {t for e in config.entries for t in (*e.questions, *also)}
    for k, text in said:
        assert text in base.config.entries[k].also
        assert all(fuzz.ratio(text.lower(), t.lower()) < 75 for t in also), text
        own = config.entries[k].questions
        assert all(fuzz.ratio(text.lower(), q.lower()) < 75 for q in own), text
    # the questions the Thinker knows all stay
    assert [e.questions for e in config.entries] == [e.questions for e in base.config.entries]


# what people say that no entry of ENTRIES answers (written for this test)
ELSEWHERE = (
    "Who won the football match last night?",
    "Can you tell me a joke?",
    "What is the capital of France?",
    "How do I fix my computer?",
    "Who wrote the play about the prince of Denmark?",
    "I like watching films about space.",
    "What is the speed of light?",
    "Do you play any sports?",
)
ELSEWHERE_REPLY = "I can only help with your visit."


def test_what_no_entry_answers_is_from_elsewhere_and_answered_so(tmp_path):
    config = KnowledgeConfig(
        ENTRIES, elsewhere=ELSEWHERE, elsewhere_weight=1.0, elsewhere_reply=ELSEWHERE_REPLY
    )
    knowledge = Knowledge(config)
    for text in (
        "Who won the tennis last night?",
        "tell me a funny joke",
        "how do I fix my laptop",
    ):
        assert knowledge.from_elsewhere(text), text
    for entry in ENTRIES:
        for question in entry.questions:
            assert not knowledge.from_elsewhere(question), question
    assert not knowledge.from_elsewhere("is my puppy welcome")
    assert not knowledge.from_elsewhere("") and not knowledge.from_elsewhere("?!")
    # the entries are still found as before (the class from elsewhere is never one of them)
    assert knowledge.nearest("I injured my hand")[0] in ENTRIES[0].questions
    assert knowledge.nearest("Who won the tennis last night?")[0] in config.asked()
    # a base without such texts, or one asked for certainty it never reaches, finds none
    assert not Knowledge(KnowledgeConfig(ENTRIES)).from_elsewhere("tell me a funny joke")
    sure = Knowledge(dataclasses.replace(config, elsewhere_above=1.0))
    assert not sure.from_elsewhere("tell me a funny joke")
    config.save(tmp_path)
    assert KnowledgeConfig.load(tmp_path) == config

    conductor = ThinkerConductor.tiny(
        seed=0, config=ConductorConfig(do_sample=False, max_new_tokens=4)
    )
    conductor.knowledge = knowledge
    prompts = []  # a turn from elsewhere never reaches the Thinker
    encode = conductor.encoder.encode_prompt
    conductor.encoder.encode_prompt = lambda t, *a, **k: (
        prompts.append(t.text) or encode(t, *a, **k)
    )
    assert run_conductor(conductor, UserTurn(text="tell me a funny joke")) == (
        f"{ELSEWHERE_REPLY} <m_bos> tilt <m_eos>"
    )
    assert prompts == []
    run_conductor(conductor, UserTurn(text="is my puppy welcome"))
    assert prompts == ["can i bring my dog"]


def test_an_urgent_entry_is_never_taken_for_elsewhere_nor_what_the_base_has(tmp_path):
    config = KnowledgeConfig(
        ENTRIES, elsewhere=ELSEWHERE, elsewhere_weight=1.0, elsewhere_reply=ELSEWHERE_REPLY
    )
    joke = "tell me a funny joke"  # from elsewhere; of the entries, likeliest first aid
    assert Knowledge(config).from_elsewhere(joke)
    assert not Knowledge(config).elsewhere_reading(joke)[1]

    def urgent(k: int) -> Knowledge:
        entries = tuple(dataclasses.replace(e, urgent=i == k) for i, e in enumerate(ENTRIES))
        return Knowledge(dataclasses.replace(config, entries=entries))

    first_aid, cafe = urgent(0), urgent(1)
    assert first_aid.elsewhere_reading(joke)[1] and not first_aid.from_elsewhere(joke)
    assert not cafe.elsewhere_reading(joke)[1] and cafe.from_elsewhere(joke)
    with pytest.raises(ValueError, match="urgent"):
        KnowledgeEntry(("Help?",), urgent="yes")
    first_aid.config.save(tmp_path)
    assert KnowledgeConfig.load(tmp_path).entries[0].urgent
    # a text from elsewhere that one of the base's nearly is stays out of the class
    has_it = dataclasses.replace(config, elsewhere=(*ELSEWHERE, "Can I bring my dog?"))
    assert not Knowledge(has_it).from_elsewhere("Can I bring my dog?")
    apart = dataclasses.replace(has_it, elsewhere_apart=2.0)  # (none left out)
    assert (
        Knowledge(apart).elsewhere_reading("Can I bring my dog?")[0]
        > (Knowledge(has_it).elsewhere_reading("Can I bring my dog?")[0])
    )
    # every text from elsewhere left out: none is from elsewhere, the entries still found
    none_apart = Knowledge(dataclasses.replace(config, elsewhere_apart=-1.0))
    assert none_apart.elsewhere_reading("tell me a funny joke") == (0.0, False)
    assert none_apart.nearest("I injured my hand")[0] in ENTRIES[0].questions


def test_texts_from_elsewhere_are_checked():
    with pytest.raises(ValueError, match="elsewhere_reply"):
        KnowledgeConfig(ENTRIES, elsewhere=ELSEWHERE)
    with pytest.raises(ValueError, match="classifier"):
        KnowledgeConfig(ENTRIES, elsewhere=ELSEWHERE, elsewhere_reply="x", classifier_c=0.0)
    with pytest.raises(ValueError, match="elsewhere must be texts"):
        KnowledgeConfig(ENTRIES, elsewhere=["a list"], elsewhere_reply="x")
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="elsewhere_weight"):
            KnowledgeConfig(ENTRIES, elsewhere_weight=bad)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="elsewhere_above"):
            KnowledgeConfig(ENTRIES, elsewhere_above=bad)


def test_the_domains_texts_from_elsewhere_are_no_greetings_and_find_no_entry():
    config = domain_knowledge()
    assert len(config.elsewhere) > 1_000 and config.elsewhere_reply.strip()
    assert "Hello" not in config.elsewhere and "Hi, How is it going?" not in config.elsewhere
    assert all(3 <= len(text.split()) <= 25 for text in config.elsewhere)
    knowledge = Knowledge.shared(config)
    # every question the Thinker was taught is the museum's
    taught = [q for entry in config.entries for q in entry.questions]
    assert not [q for q in taught if knowledge.from_elsewhere(q)]
    # and mavid-tiny ships the base `export --conductor-knowledge domain` writes
    from mavid.avatar import EMBEDDED_WEIGHTS

    assert KnowledgeConfig.load(EMBEDDED_WEIGHTS / "conductor") == config
