"""The closed dialogue domain: the front desk of a museum.

Each intent has many paraphrases of the visitor's question and the avatar's answer as a speech
directive (what is said) and a motion directive (from `faces.MOTIONS`; empty for plain QA).
Some intents are *visual*: the right answer depends on what the visitor shows on camera (a
prop held up or a gesture), so understanding the video matters. Paraphrase order matters: the
last one of each intent is held out for the test split, the one before it for validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

__all__ = [
    "DIRECTIVE_FORMAT",
    "ELSEWHERE_REPLY",
    "INTENTS",
    "PROPS",
    "Answer",
    "Intent",
    "domain_corpus",
    "format_directive",
    "intent_by_name",
    "known_corpus",
    "more_questions",
    "paraphrase_split",
]

# What the desk says to what none of its intents answers (the Conductor's knowledge base's
# texts from elsewhere: `mavid.data.elsewhere`)
ELSEWHERE_REPLY = (
    "I'm the museum's guide, so I can only help with your visit: tickets, opening hours, "
    "the galleries and the facilities."
)

# What the visitor may show on camera ("none": nothing in particular).
PROPS = ("none", "ticket", "map", "camera", "umbrella", "backpack", "thumbs_up", "thumbs_down")

M_BOS, M_EOS = "<m_bos>", "<m_eos>"
DIRECTIVE_FORMAT = "{speech} <m_bos> {motion} <m_eos>"


@dataclass(frozen=True)
class Answer:
    speech: str  # the speech directive: the words the avatar says
    motion: str = ""  # the motion directive: comma-separated motions, "" for plain QA


@dataclass(frozen=True)
class Intent:
    name: str
    paraphrases: tuple[str, ...]
    answer: Answer | None = None  # the answer when it does not depend on the camera
    # visual intents: prop shown on camera -> answer ("none" = nothing useful shown)
    by_prop: dict[str, Answer] = field(default_factory=dict)

    @property
    def visual(self) -> bool:
        return bool(self.by_prop)

    def answer_for(self, prop: str = "none") -> Answer:
        if self.by_prop:
            if prop not in self.by_prop:
                raise ValueError(f"intent {self.name!r} has no answer for prop {prop!r}")
            return self.by_prop[prop]
        if self.answer is None:
            raise ValueError(f"intent {self.name!r} has no answer")
        return self.answer


def format_directive(answer: Answer) -> str:
    """The Conductor's target text (Eq. 3): 'speech <m_bos> motion <m_eos>'."""
    return DIRECTIVE_FORMAT.format(speech=answer.speech, motion=answer.motion).replace("  ", " ")


def _i(name: str, paraphrases: list[str], speech: str = "", motion: str = "", **by_prop) -> Intent:
    if by_prop:
        return Intent(name, tuple(paraphrases), None, {k: Answer(*v) for k, v in by_prop.items()})
    return Intent(name, tuple(paraphrases), Answer(speech, motion))


_LONG_HISTORY = (
    "The museum opened in eighteen ninety two in a former railway station. The great hall "
    "still has the original iron roof and the station clock above the entrance. In the nineteen "
    "sixties the building was extended with two modern wings, one for science and one for art. "
    "Today we hold more than forty thousand objects, and about one tenth of them are on display "
    "at any time. The rest are kept in the stores below the garden, where our conservators work."
)
_LONG_TOUR = (
    "Of course. Start on the ground floor with the dinosaur hall, where the big skeleton stands "
    "under the roof. Then take the stairs to the first floor for the Egyptian rooms and the "
    "coins. The second floor has the paintings, from early portraits to modern art, and the "
    "photography gallery. Finish in the garden, where the sculptures are, and if you are hungry "
    "the café is next to the garden doors. The whole tour takes about two hours at an easy pace."
)
_LONG_RULES = (
    "Here are the main rules for the galleries. Please do not touch the objects unless a sign "
    "says you may. Photos are welcome, but without flash, and tripods are not allowed. Large "
    "bags and umbrellas go to the cloakroom, which is free. Food and drinks stay in the café. "
    "Please speak softly in the reading room, and keep children close on the stairs. If you "
    "need help, any guide in a blue jacket will be happy to assist you."
)

INTENTS: tuple[Intent, ...] = (
    _i(
        "greeting",
        [
            "Hello there.",
            "Hi, good morning.",
            "Hey, how are you?",
            "Good afternoon.",
            "Hello, is anyone here?",
            "Hi!",
            "Good evening, hello.",
        ],
        "Hello and welcome to the museum. How can I help you today?",
        "smile, wave",
    ),
    _i(
        "goodbye",
        [
            "Goodbye.",
            "Thanks, bye.",
            "See you later.",
            "That's all, goodbye.",
            "I'm leaving now, bye bye.",
            "Have a nice day, goodbye.",
        ],
        "Goodbye, and thank you for visiting. Have a lovely day.",
        "wave, smile",
    ),
    _i(
        "thanks",
        [
            "Thank you.",
            "Thanks a lot.",
            "That's very helpful, thanks.",
            "Thank you so much.",
            "Great, thanks.",
            "Many thanks for your help.",
        ],
        "You are very welcome. Enjoy your visit.",
        "smile, nod",
    ),
    _i(
        "opening_hours",
        [
            "When are you open?",
            "What are the opening hours?",
            "What time do you open?",
            "How late are you open today?",
            "When does the museum open?",
            "Until what time can I visit?",
            "What are your hours?",
        ],
        "We are open every day from nine in the morning until six in the evening.",
    ),
    _i(
        "closing_time",
        [
            "When do you close?",
            "What time does the museum close?",
            "How long until closing?",
            "Is it closing soon?",
            "When is closing time today?",
            "What time do I have to leave?",
        ],
        "The galleries close at six. The last entry is at five thirty.",
    ),
    _i(
        "ticket_price",
        [
            "How much is a ticket?",
            "What does entry cost?",
            "How much to get in?",
            "What is the admission price?",
            "Is it expensive to visit?",
            "What do tickets cost?",
            "How much do I pay for entry?",
        ],
        "An adult ticket costs twelve euros. Students and seniors pay eight.",
    ),
    _i(
        "child_price",
        [
            "Do children pay?",
            "How much for kids?",
            "Is it free for children?",
            "What does a child ticket cost?",
            "Do I need to pay for my son?",
            "Are kids free to enter?",
        ],
        "Children under twelve enter for free, and teenagers pay five euros.",
    ),
    _i(
        "buy_ticket",
        [
            "Where can I buy a ticket?",
            "Can I buy tickets here?",
            "I'd like to buy a ticket.",
            "Where do I get tickets?",
            "How do I get a ticket?",
            "Can I pay for entry at this desk?",
            "One ticket please.",
        ],
        "You can buy tickets right here at this desk, or at the machines by the door.",
        "nod",
    ),
    _i(
        "cloakroom",
        [
            "Where is the cloakroom?",
            "Where can I leave my coat?",
            "Is there a place for my jacket?",
            "Where do I put my coat?",
            "Do you have a coat check?",
            "Where can I hang my coat?",
        ],
        "The cloakroom is to your left, just past the shop. It is free of charge.",
    ),
    _i(
        "toilets",
        [
            "Where are the toilets?",
            "Where is the restroom?",
            "Is there a bathroom?",
            "I need the toilet.",
            "Where can I find the washroom?",
            "Excuse me, the restrooms?",
        ],
        "The toilets are downstairs, next to the cloakroom, and on the second floor.",
    ),
    _i(
        "cafe",
        [
            "Is there a café?",
            "Where can I get a coffee?",
            "Can I eat something here?",
            "Where is the restaurant?",
            "Is there somewhere to have lunch?",
            "Do you have a coffee shop?",
        ],
        "Yes, the café is on the ground floor by the garden doors. It serves lunch until three.",
    ),
    _i(
        "shop",
        [
            "Is there a gift shop?",
            "Where can I buy souvenirs?",
            "Do you sell postcards?",
            "Where is the museum shop?",
            "Can I buy a book about the museum?",
            "Where do you sell gifts?",
        ],
        "The museum shop is right behind you, next to the main entrance.",
    ),
    _i(
        "wifi",
        [
            "Is there wifi?",
            "What's the wifi password?",
            "Can I get on the internet?",
            "Do you have free wireless?",
            "How do I connect to the network?",
            "Is there internet access here?",
        ],
        "Yes, connect to museum guest. No password is needed.",
    ),
    _i(
        "audio_guide",
        [
            "Do you have an audio guide?",
            "Can I rent a headset?",
            "Is there a guide I can listen to?",
            "Where do I get the audio tour?",
            "Do you have audio guides in English?",
            "How much is the audio guide?",
        ],
        "Audio guides are three euros at this desk, in six languages.",
    ),
    _i(
        "guided_tour",
        [
            "Are there guided tours?",
            "When is the next tour?",
            "Can I join a guided tour?",
            "Do you offer tours with a guide?",
            "Is there a tour today?",
            "What time do the tours start?",
        ],
        "Guided tours start every hour on the hour, here by the desk.",
        "nod",
    ),
    _i(
        "wheelchair",
        [
            "Is the museum wheelchair accessible?",
            "Do you have a lift?",
            "Can I get upstairs without stairs?",
            "Is there an elevator?",
            "Can I borrow a wheelchair?",
            "Is there step free access?",
        ],
        "Yes, every floor is step free. The lift is behind the stairs, "
        "and wheelchairs are free to borrow.",
    ),
    _i(
        "parking",
        [
            "Is there parking?",
            "Where can I park my car?",
            "Do you have a car park?",
            "Is there somewhere to leave the car?",
            "Where do visitors park?",
            "Can I park nearby?",
        ],
        "There is a car park behind the museum. The first two hours are free.",
    ),
    _i(
        "dinosaurs",
        [
            "Where are the dinosaurs?",
            "How do I find the dinosaur hall?",
            "Where is the big skeleton?",
            "I want to see the dinosaurs.",
            "Which way to the fossils?",
            "Where are the dinosaur bones?",
        ],
        "The dinosaur hall is straight ahead, through the big doors.",
        "look away",
    ),
    _i(
        "egypt",
        [
            "Where is the Egyptian collection?",
            "Where are the mummies?",
            "How do I get to ancient Egypt?",
            "Where can I see the mummy?",
            "Which floor is Egypt on?",
            "Where are the pharaohs?",
        ],
        "Ancient Egypt is on the first floor. Take the stairs and turn right.",
        "look away",
    ),
    _i(
        "paintings",
        [
            "Where are the paintings?",
            "Where is the art gallery?",
            "I'd like to see the paintings.",
            "Which floor has the art?",
            "Where do you keep the portraits?",
            "How do I find the painting rooms?",
        ],
        "The paintings are on the second floor, in the west wing.",
    ),
    _i(
        "special_exhibition",
        [
            "What's the special exhibition?",
            "Is there a temporary show?",
            "What is on at the moment?",
            "Is there anything new to see?",
            "What exhibition is on now?",
            "Any special events this month?",
        ],
        "This month we show photographs of the sea, "
        "in the photography gallery on the second floor.",
    ),
    _i(
        "photos_allowed",
        [
            "Can I take photos?",
            "Is photography allowed?",
            "Am I allowed to take pictures?",
            "Can I use my phone camera?",
            "Are photos okay inside?",
            "May I take a picture of the paintings?",
        ],
        "Yes, photos are welcome, but please do not use the flash.",
        "nod",
    ),
    _i(
        "food_inside",
        [
            "Can I eat in the galleries?",
            "Can I bring my sandwich inside?",
            "Is food allowed in the museum?",
            "Can I drink water in the exhibition?",
            "May I take my coffee in?",
            "Can I have a snack inside?",
        ],
        "I'm sorry, food and drinks stay in the café.",
        "shake",
    ),
    _i(
        "pets",
        [
            "Can I bring my dog?",
            "Are dogs allowed?",
            "Is my dog welcome here?",
            "Can pets come inside?",
            "Do you allow animals?",
            "May my dog come in?",
        ],
        "Only assistance dogs are allowed inside, I'm afraid.",
        "shake",
    ),
    _i(
        "lost_item",
        [
            "I lost my phone.",
            "I can't find my wallet.",
            "Has anyone found a bag?",
            "I think I left my scarf somewhere.",
            "Where is lost and found?",
            "I lost something in the museum.",
        ],
        "I'm sorry to hear that. Lost items come to this desk. Let me check for you.",
        "nod",
    ),
    _i(
        "first_aid",
        [
            "I don't feel well.",
            "Is there first aid?",
            "I need a doctor.",
            "Someone fainted.",
            "Do you have a plaster?",
            "I hurt my hand.",
        ],
        "Please sit down here. I am calling our first aid team right now.",
        "nod",
    ),
    _i(
        "membership",
        [
            "How do I become a member?",
            "Do you have a membership?",
            "Is there a yearly pass?",
            "Can I get an annual ticket?",
            "What does membership cost?",
            "Are there member discounts?",
        ],
        "A yearly membership is forty euros and gives free entry all year.",
    ),
    _i(
        "history",
        [
            "Tell me about the history of the museum.",
            "How old is this building?",
            "When was the museum founded?",
            "What's the story of this place?",
            "Can you tell me about the building?",
            "What was this building before?",
        ],
        _LONG_HISTORY,
        "smile",
    ),
    _i(
        "tour_plan",
        [
            "What should I see first?",
            "Can you suggest a route?",
            "I have two hours, what do you recommend?",
            "How should I plan my visit?",
            "What are the highlights?",
            "Where should I start?",
        ],
        _LONG_TOUR,
        "nod, look away",
    ),
    _i(
        "rules",
        [
            "What are the rules?",
            "Is there anything I shouldn't do?",
            "What am I not allowed to do inside?",
            "Are there any rules for visitors?",
            "What should I know before going in?",
            "Tell me the museum rules.",
        ],
        _LONG_RULES,
        "nod",
    ),
    # ---- visual intents: the answer depends on what is shown on camera
    _i(
        "check_item",
        [
            "Is this valid?",
            "Can I get in with this?",
            "Does this work for entry?",
            "Will this let me in?",
            "Is this okay to enter?",
            "Can I use this to go in?",
        ],
        ticket=("Yes, that ticket is valid for today. Enjoy your visit.", "nod, smile"),
        map=("That is a map, not a ticket. You can buy a ticket here.", "shake"),
        camera=("That is a camera. You still need a ticket to enter.", "shake"),
        none=("I can't see anything. Could you hold it up to the camera?", "tilt"),
    ),
    _i(
        "what_is_this",
        [
            "What is this?",
            "Can you tell what I'm holding?",
            "What do I have here?",
            "Do you know what this is?",
            "What am I holding up?",
            "Look, what is this thing?",
        ],
        ticket=("That is one of our entry tickets.", "nod"),
        map=("That is our museum map.", "nod"),
        camera=("That looks like a camera.", "nod"),
        umbrella=("That is an umbrella.", "nod"),
        backpack=("That is a backpack.", "nod"),
        none=("I don't see anything in your hands.", "tilt"),
    ),
    _i(
        "leave_item",
        [
            "Where can I leave this?",
            "Can I take this inside?",
            "What do I do with this?",
            "Do I have to check this in?",
            "Can I keep this with me?",
            "Where should I put this?",
        ],
        umbrella=("Umbrellas go in the stand by the door, please.", "look away"),
        backpack=("Please leave large bags in the cloakroom, to your left.", "look away"),
        camera=("You can keep your camera with you. Just no flash, please.", "nod, smile"),
        map=("Keep the map, it is yours to take.", "smile"),
        none=("Could you show me what you want to leave?", "tilt"),
    ),
    _i(
        "feedback",
        [
            "Here's what I thought of the visit.",
            "This is my opinion of the museum.",
            "What I think of the exhibition.",
            "My feedback on today.",
            "How was my visit? Like this.",
            "Let me tell you what I think.",
        ],
        thumbs_up=("I'm so glad you enjoyed it. Thank you for the kind feedback.", "smile, nod"),
        thumbs_down=("I'm sorry it was not good. I will pass your feedback on.", "nod"),
        none=("I'd love to hear your feedback. Did you enjoy the visit?", "tilt, smile"),
    ),
)


def intent_by_name(name: str) -> Intent:
    for intent in INTENTS:
        if intent.name == name:
            return intent
    raise KeyError(f"no intent {name!r}")


def paraphrase_split(intent: Intent, index: int) -> str:
    """Which split a paraphrase belongs to: the last is held out for test, the one before val."""
    n = len(intent.paraphrases)
    if not 0 <= index < n:
        raise IndexError(f"paraphrase {index} out of range for {intent.name!r} ({n})")
    if index == n - 1:
        return "test"
    if index == n - 2:
        return "val"
    return "train"


def domain_corpus() -> list[str]:
    """Every text of the domain (questions, answers, directives, typed forms), deduplicated.

    Used to train the Conductor's tokenizer and to build PocketSphinx's domain language model.
    """
    texts: list[str] = []
    for intent in INTENTS:
        texts.extend(intent.paraphrases)
        answers = list(intent.by_prop.values()) or [intent.answer_for()]
        for a in answers:
            texts.append(a.speech)
            texts.append(format_directive(a))
    return list(dict.fromkeys(texts))


def known_corpus() -> list[str]:
    """The domain's texts less the held-out (test) paraphrases, deduplicated.

    What a Conductor trained on the world may know: its hearing's language model is written
    from these, so held-out questions stay unheard of until the test.
    """
    held_out = {
        p
        for intent in INTENTS
        for k, p in enumerate(intent.paraphrases)
        if paraphrase_split(intent, k) == "test"
    }
    return [t for t in domain_corpus() if t not in held_out]


@cache
def more_questions() -> dict[str, tuple[str, ...]]:
    """Per intent, other ways a visitor may ask (`more_questions.json`, ~58 per intent), for
    the Conductor's knowledge base only: the world never says them and no model trains on them.

    Written in four batches by sessions shown only the known (train and val) questions, the
    answers and the earlier batches, never the held-out ones: 16 per intent, 16 more, then
    twice 8-20 aimed at the intents the knowledge base confused most in cross-validation over
    its own texts. Of the 2,008 written, the 52 spelt like (rapidfuzz ratio >= 75) or meaning
    nearly the same as (word-vector cosine >= 0.9, in this knowledge base) their intent's
    held-out question were dropped, so the test split's paraphrases stay unheard of
    (tests/test_domain.py checks it).
    """
    raw = json.loads(resources.files(__package__).joinpath("more_questions.json").read_text())
    names = {intent.name for intent in INTENTS}
    if set(raw) != names:
        raise ValueError(
            f"more_questions.json: intents differ from the domain's: {set(raw) ^ names}"
        )
    return {name: tuple(raw[name]) for name in sorted(raw)}
