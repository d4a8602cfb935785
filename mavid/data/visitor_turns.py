"""Visitor turns without the answer's media: more, and more varied, stage-1 data for the Conductor.

The costly part of a world sample is the avatar's answer video; the Conductor only needs the
visitor's turn (typed text, or espeak speech + noise, always with camera frames) and the target
directive. `TurnGenerator.turn(index)` makes turn `index` as a pure function of (seed, index):
an intent, one of its allowed paraphrases, typed or spoken, a voice with its own rate and pitch,
a noise bed, silence around the words, and the visitor holding a prop up to the camera.

Held-out material never appears: paraphrases come from `config.paraphrase_splits` (never
"test"), voices from the non-test voice pool (both roles: the visitor of a train turn may speak
with any voice that is not held out), identities from the train identity pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mavid.conductor.format import plain_words
from mavid.data.ambience import ambience, mix_under
from mavid.data.dialogue import (
    IDENTITY_POOL,
    USER_FRAMES,
    USER_SAMPLE_RATE,
    USER_VIDEO_FPS,
    identity_for,
    typed_form,
    voice_pool,
)
from mavid.data.domain import INTENTS, PROPS, Intent, paraphrase_split
from mavid.data.speech import (
    MAX_EXTRA_VARIANTS,
    Voice,
    crossed_variant,
    espeak_variants,
    synthesize,
    variant_formants,
    variant_is_safe,
    voice_variants,
)
from mavid.data.user_camera import render_user_frames
from mavid.interfaces import UserTurn

__all__ = [
    "NOISES",
    "TurnGenerator",
    "TurnPlan",
    "TurnsConfig",
    "crossed_voices",
    "drop_words",
    "more_train_voices",
    "train_voices",
]

# a visitor turn's noise beds (`mavid.data.ambience`), "silence" first: none
NOISES = ("silence", "rain", "cafe", "hum", "room", "music")
_STREAM = 4049  # keeps these draws apart from plan_sample's (seed, index) streams


@dataclass(frozen=True)
class TurnsConfig:
    """How generated visitor turns vary (wider than the world's own, to fight memorising)."""

    paraphrase_splits: tuple[str, ...] = ("train",)  # never "test"
    typed_share: float = 0.35
    distractor_share: float = 0.25  # non-visual intents: some prop on camera anyway
    noise_share: float = 0.5
    noise_db: tuple[float, float] = (-28.0, -8.0)
    rate: tuple[int, int] = (115, 230)  # words per minute
    pitch: tuple[int, int] = (10, 90)
    pitch_range: tuple[int, int] = (15, 95)
    silence_s: tuple[float, float] = (0.0, 0.4)  # before and after the words, each
    gain_db: tuple[float, float] = (-12.0, 3.0)
    frame_variants: int = 3  # camera takes per (identity, prop), rendered once and reused
    frame_size: int = 128

    def __post_init__(self) -> None:
        if "test" in self.paraphrase_splits:
            raise ValueError("generated turns must not use the held-out test paraphrases")
        if not self.paraphrase_splits or set(self.paraphrase_splits) - {"train", "val"}:
            raise ValueError(f"paraphrase_splits must be within ('train', 'val'), got "
                             f"{self.paraphrase_splits}")  # fmt: skip
        for name in ("typed_share", "distractor_share", "noise_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.frame_variants < 1:
            raise ValueError("frame_variants must be >= 1")

    def voice(self, names: Sequence[str], rng: np.random.Generator) -> Voice:
        """One of `names` at a rate, pitch and pitch range drawn from these ranges."""
        return Voice(
            name=names[int(rng.integers(len(names)))],
            rate=int(rng.integers(self.rate[0], self.rate[1] + 1)),
            pitch=int(rng.integers(self.pitch[0], self.pitch[1] + 1)),
            pitch_range=int(rng.integers(self.pitch_range[0], self.pitch_range[1] + 1)),
        )


@dataclass(frozen=True)
class TurnPlan:
    """Every random choice of one generated turn (for tests and inspection)."""

    index: int
    intent: str
    paraphrase_index: int
    prop: str
    typed: bool
    voice: Voice
    noise: str
    identity: int
    frame_variant: int


def train_voices() -> list[str]:
    """Every voice that is not held out for test (the train pools of both roles)."""
    return sorted(set(voice_pool("train", "user")) | set(voice_pool("train", "avatar")))


def _held_out_variants() -> set[str]:
    """The variants of the test's voices (both roles): never heard in training."""
    test = set(voice_pool("test", "user")) | set(voice_pool("test", "avatar"))
    return {name.split("+", 1)[1] for name in test}


def more_train_voices() -> list[str]:
    """Voices beyond the world's: every other variant espeak-ng ships, in the world's
    languages, less any with a held-out variant's timbre (its formant table), so the test's
    voices stay unheard, and any with settings out of espeak-ng's ranges (they crash it)."""
    held_out = _held_out_variants()
    held_timbres = {variant_formants(v) for v in held_out}
    world = {name.split("+", 1)[1] for name in voice_variants()}
    extra = [
        v
        for v in espeak_variants()
        if v not in world
        and v not in held_out
        and variant_formants(v) not in held_timbres
        and variant_is_safe(v)
    ]
    langs = sorted({name.split("+", 1)[0] for name in voice_variants()})
    return [f"{lang}+{v}" for lang in langs for v in extra]


def crossed_voices(count: int, seed: int) -> dict[str, str]:
    """`count` voice variants nobody shipped, each setting crossed from a variant of the
    world's own training voices (`crossed_variant`; none with a held-out variant's timbre):
    name -> the text of its variant file, for `add_variants`. Held-out variants lend nothing."""
    if not 0 <= count <= MAX_EXTRA_VARIANTS:
        raise ValueError(f"crossed voices: 0 to {MAX_EXTRA_VARIANTS}, got {count}")
    held_out = _held_out_variants()
    held_timbres = {tuple(sorted(variant_formants(v))) for v in held_out}
    donors = sorted({name.split("+", 1)[1] for name in train_voices()} - held_out)
    rng = np.random.default_rng([seed, 0xC055])
    out: dict[str, str] = {}
    while len(out) < count:
        text = crossed_variant(donors, rng)
        formants = tuple(sorted(ln for ln in text.splitlines() if ln.startswith("formant ")))
        if formants not in held_timbres:
            out[f"x{abs(seed)}_{len(out)}"] = text
    return out


def drop_words(text: str, rng: np.random.Generator, p: float) -> str:
    """Each word dropped with probability `p` (at least one kept): typed input's word dropout."""
    words = text.split()
    if p <= 0 or len(words) < 2:
        return text
    keep = rng.random(len(words)) >= p
    if not keep.any():
        keep[int(rng.integers(len(words)))] = True
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


class TurnGenerator:
    """Visitor turns of the synthetic domain, turn `index` a pure function of (seed, index).

    Camera takes are cached per (identity, prop, variant): rendering is the slow part and the
    prop, not the take, is what the Conductor must see.
    """

    def __init__(self, seed: int, config: TurnsConfig | None = None) -> None:
        self.seed = seed
        self.config = config or TurnsConfig()
        self._choices: list[tuple[Intent, int]] = [
            (intent, k)
            for intent in INTENTS
            for k in range(len(intent.paraphrases))
            if paraphrase_split(intent, k) in self.config.paraphrase_splits
        ]
        self._voices = train_voices()
        self._frames: dict[tuple[int, str, int], np.ndarray] = {}

    def plan(self, index: int) -> TurnPlan:
        c = self.config
        rng = np.random.default_rng([self.seed, _STREAM, index])
        # Intent first, uniformly, so intents with many paraphrases are not favoured.
        intent = INTENTS[int(rng.integers(len(INTENTS)))]
        ks = [k for i, k in self._choices if i is intent]
        paraphrase = int(ks[int(rng.integers(len(ks)))])
        if intent.visual:
            prop = str(rng.choice(sorted(intent.by_prop)))
        else:
            prop = str(rng.choice(PROPS[1:])) if rng.random() < c.distractor_share else "none"
        voice = c.voice(self._voices, rng)
        return TurnPlan(
            index=index,
            intent=intent.name,
            paraphrase_index=paraphrase,
            prop=prop,
            typed=bool(rng.random() < c.typed_share),
            voice=voice,
            noise=str(rng.choice(NOISES[1:])) if rng.random() < c.noise_share else "silence",
            identity=int(rng.integers(IDENTITY_POOL["train"])),
            frame_variant=int(rng.integers(c.frame_variants)),
        )

    def turn(self, index: int) -> tuple[UserTurn, str, str, TurnPlan]:
        """(turn as realtime hands it over, speech directive, motion directive, its plan)."""
        plan = self.plan(index)
        intent = next(i for i in INTENTS if i.name == plan.intent)
        answer = intent.answer_for(plan.prop)
        rng = np.random.default_rng([self.seed, _STREAM, index, 1])
        question = intent.paraphrases[plan.paraphrase_index]
        frames = tuple(self._camera(plan))
        if plan.typed:
            text = typed_form(question, rng)
            text = text if text.strip() else plain_words(question)
            turn = UserTurn(text=text, video=frames, video_fps=USER_VIDEO_FPS)
        else:
            turn = UserTurn(
                audio=self.speech(question, plan, rng),
                audio_sample_rate=USER_SAMPLE_RATE,
                video=frames,
                video_fps=USER_VIDEO_FPS,
            )
        return turn, answer.speech, answer.motion, plan

    def speech(self, text: str, plan: TurnPlan, rng: np.random.Generator) -> np.ndarray:
        """`text` said as a visitor's turn: in the plan's voice, with random silences before
        and after, a random level, over the plan's noise bed; (N,) float32 at 16 kHz."""
        c, sr = self.config, USER_SAMPLE_RATE
        words = synthesize(text, plan.voice, sample_rate=sr).audio  # (N,)
        before, after = (round(float(rng.uniform(*c.silence_s)) * sr) for _ in range(2))
        speech = np.concatenate([np.zeros(before, np.float32), words, np.zeros(after, np.float32)])
        speech *= np.float32(10 ** (float(rng.uniform(*c.gain_db)) / 20))
        if plan.noise == "silence":
            return np.clip(speech, -1, 1).astype(np.float32)
        bed = ambience(plan.noise, speech.size, sr, rng)
        return mix_under(speech, bed, float(rng.uniform(*c.noise_db)))

    def _camera(self, plan: TurnPlan) -> np.ndarray:
        key = (plan.identity, plan.prop, plan.frame_variant)
        if key not in self._frames:
            identity = identity_for(self.seed, "train", plan.identity, "user")
            rng = np.random.default_rng([self.seed, _STREAM, *key[::2], PROPS.index(plan.prop)])
            self._frames[key] = render_user_frames(
                identity, plan.prop, USER_FRAMES, rng, self.config.frame_size
            )  # (USER_FRAMES, H, W, 3)
        return self._frames[key]
