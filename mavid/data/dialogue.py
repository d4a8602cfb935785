"""One dialogue sample: the visitor's turn and the avatar's answer as audio-video clips.

`plan_sample(seed, index)` draws every random choice (cheap, deterministic); `render_sample`
makes the media (speech, faces, ambience). The answer is cut into clips the way the Creator
makes them: a short first clip, then full clips, each with the words spoken in its window
(by espeak's WORD timing: a word belongs to the clip holding its midpoint) and the motions
active in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from mavid.data.ambience import AMBIENCES, ambience, mix_under
from mavid.data.domain import INTENTS, PROPS, Answer, format_directive, paraphrase_split
from mavid.data.faces import (
    MOTION_SECONDS,
    Identity,
    mouth_track,
    parse_motion,
    render_frames,
    sample_identity,
    states_for_clip,
)
from mavid.data.speech import Voice, WordTiming, resample, synthesize, voice_variants
from mavid.data.user_camera import render_user_frames
from mavid.interfaces import MediaSpec, UserTurn

__all__ = [
    "SPLITS",
    "ClipTarget",
    "DialogueSample",
    "SamplePlan",
    "clip_layout",
    "identity_for",
    "plan_sample",
    "render_sample",
    "typed_form",
    "voice_pool",
]

SPLITS = ("train", "val", "test")
LEAD_IN_S = 0.12  # silence before the avatar's first word
TAIL_S = 0.25  # and after the last one
USER_SAMPLE_RATE = 16_000  # what realtime/ hands the Conductor
USER_VIDEO_FPS = 2.0
USER_FRAMES = 4
IDENTITY_POOL = {"train": 96, "val": 12, "test": 12}


@dataclass(frozen=True)
class ClipTarget:
    index: int
    start_frame: int
    num_frames: int
    speech: str  # the words spoken in this clip's window: the Creator's per-clip speech prompt
    motion: str  # the motions active in this window: its per-clip motion prompt


@dataclass(frozen=True)
class SamplePlan:
    """Every random choice of one sample (JSON-able)."""

    key: str
    split: str
    intent: str
    paraphrase_index: int
    prop: str
    typed: bool
    user_voice: Voice
    user_noise: str
    user_noise_db: float
    user_identity: int  # index into the split's identity pool
    avatar_voice: Voice
    avatar_identity: int
    ambience: str
    ambience_db: float
    seed: int  # for blinks, sway, noise


@dataclass
class DialogueSample:
    plan: SamplePlan
    question: str  # the visitor's words (the typed form when typed)
    answer: Answer
    directive: str  # the Conductor's target: 'speech <m_bos> motion <m_eos>'
    user_audio: np.ndarray | None  # (Nu,) float32 at USER_SAMPLE_RATE; None when typed
    user_frames: np.ndarray  # (Fu, H, W, 3) uint8 at USER_VIDEO_FPS
    audio: np.ndarray  # (N,) float32 at spec.audio_sample_rate: speech + ambience
    speech_audio: np.ndarray  # (N,) float32: the clean speech alone (for the meters)
    frames: np.ndarray  # (F, H, W, 3) uint8 at spec.fps
    mouth: np.ndarray  # (F, 2) float32 ground-truth (opening, rounding) per frame
    clips: tuple[ClipTarget, ...]
    words: tuple[WordTiming, ...]  # on the answer's clock (lead-in included)
    avatar_identity: Identity
    user_identity: Identity
    sample_rate: int = 24_000
    fps: int = 25
    meta: dict = field(default_factory=dict)

    @property
    def intent(self) -> str:
        return self.plan.intent

    @property
    def split(self) -> str:
        return self.plan.split

    def clip_media(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The answer cut as the Creator makes it: [(frames (F, H, W, 3), audio (N,))] per clip."""
        spf = self.sample_rate // self.fps
        return [
            (
                self.frames[c.start_frame : c.start_frame + c.num_frames],
                self.audio[c.start_frame * spf : (c.start_frame + c.num_frames) * spf],
            )
            for c in self.clips
        ]

    def user_turn(self) -> UserTurn:
        """The visitor's turn as the Conductor receives it (typed text or speech, + camera)."""
        return UserTurn(
            text=self.question if self.plan.typed else "",
            audio=self.user_audio,
            audio_sample_rate=USER_SAMPLE_RATE,
            video=tuple(self.user_frames),
            video_fps=USER_VIDEO_FPS,
        )


def voice_pool(split: str, role: str) -> list[str]:
    """Voice names of a split. Test voices are held out: never used in train or val."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    names = voice_variants()
    held_out = names[::6]  # every sixth variant is test-only
    rest = [n for n in names if n not in held_out]
    pool = held_out if split == "test" else rest
    # the avatar and the visitor draw from interleaved halves so they rarely sound alike
    return pool[0::2] if role == "avatar" else pool[1::2]


def identity_for(seed: int, split: str, index: int, role: str = "avatar") -> Identity:
    """Identity `index` of a split's pool: distinct random draws per split, so test is held out."""
    split_id = SPLITS.index(split)
    role_id = 0 if role == "avatar" else 1
    return sample_identity(np.random.default_rng([seed, 7919, split_id, role_id, index]))


def typed_form(text: str, rng: np.random.Generator) -> str:
    """How people type: lower case, little punctuation, sometimes a dropped letter."""
    t = re.sub(r"[?!.,']", "", text.lower())
    if rng.random() < 0.3 and len(t) > 6:
        i = int(rng.integers(1, len(t) - 1))
        if t[i] != " ":
            t = t[:i] + t[i + 1 :]
    return t


def _split_for(rng: np.random.Generator) -> str:
    r = rng.random()
    return "train" if r < 0.8 else ("val" if r < 0.9 else "test")


def plan_sample(seed: int, index: int, intents: Sequence[str] = ()) -> SamplePlan:
    """All random choices of sample `index` of the world of `seed` (optionally of `intents`)."""
    rng = np.random.default_rng([seed, index])
    split = _split_for(rng)
    pool = [i for i in INTENTS if i.name in intents] if intents else list(INTENTS)
    if not pool:
        raise ValueError(f"no known intent among {list(intents)}")
    intent = pool[int(rng.integers(len(pool)))]
    choices = [i for i in range(len(intent.paraphrases)) if paraphrase_split(intent, i) == split]
    p_index = int(rng.choice(choices))
    if intent.visual:
        prop = str(rng.choice(sorted(intent.by_prop)))
    else:
        # a distractor on camera now and then, so the answer must come from the words
        prop = str(rng.choice(PROPS[1:])) if rng.random() < 0.25 else "none"

    def voice(role: str) -> Voice:
        pool = voice_pool(split, role)
        return Voice(
            name=str(pool[int(rng.integers(len(pool)))]),
            rate=int(rng.integers(140, 195)),
            pitch=int(rng.integers(25, 76)),
            pitch_range=int(rng.integers(30, 81)),
        )

    noisy = rng.random() < 0.3
    return SamplePlan(
        key=f"{seed:x}-{index:07d}",
        split=split,
        intent=intent.name,
        paraphrase_index=p_index,
        prop=prop,
        typed=bool(rng.random() < 0.2),
        user_voice=voice("user"),
        user_noise=str(rng.choice(["rain", "cafe", "hum", "room"])) if noisy else "silence",
        user_noise_db=float(rng.uniform(-22, -10)),
        user_identity=int(rng.integers(IDENTITY_POOL[split])),
        avatar_voice=voice("avatar"),
        avatar_identity=int(rng.integers(IDENTITY_POOL[split])),
        ambience=str(rng.choice(AMBIENCES)),
        ambience_db=float(rng.uniform(-32, -18)),
        seed=int(rng.integers(2**31)),
    )


def clip_layout(total_frames: int, spec: MediaSpec) -> list[tuple[int, int]]:
    """(start_frame, num_frames) of each clip: the first short, the rest full; covers the total.

    The last clip is a full one too (the answer is padded to fill it), as the Creator makes it.
    """
    out, start, n = [], 0, spec.first_clip_frames
    while start < total_frames:
        out.append((start, n))
        start += n
        n = spec.clip_frames
    return out


def _clip_motion(motions: tuple[str, ...], start: float, end: float, motion_start: float) -> str:
    active = [m for m in motions if motion_start < end and motion_start + MOTION_SECONDS[m] > start]
    return ", ".join(active)


def render_sample(plan: SamplePlan, seed: int, spec: MediaSpec | None = None) -> DialogueSample:
    """Make the media of `plan` (world `seed` picks the identity pools)."""
    spec = spec or MediaSpec()
    intent = next(i for i in INTENTS if i.name == plan.intent)
    answer = intent.answer_for(plan.prop)
    rng = np.random.default_rng(plan.seed)
    sr, fps = spec.audio_sample_rate, spec.fps

    # ---- the visitor's turn
    question = intent.paraphrases[plan.paraphrase_index]
    user_identity = identity_for(seed, plan.split, plan.user_identity, "user")
    user_audio = None
    if plan.typed:
        question = typed_form(question, rng)
    else:
        utt = synthesize(question, plan.user_voice, sample_rate=USER_SAMPLE_RATE)
        bed = ambience(plan.user_noise, utt.audio.size, USER_SAMPLE_RATE, rng)
        user_audio = mix_under(utt.audio, bed, plan.user_noise_db)
    user_frames = render_user_frames(user_identity, plan.prop, USER_FRAMES, rng, spec.height)

    # ---- the avatar's answer
    utt = synthesize(answer.speech, plan.avatar_voice, sample_rate=sr)
    speech_end = LEAD_IN_S + utt.duration
    layout = clip_layout(int(np.ceil((speech_end + TAIL_S) * fps)), spec)
    total = layout[-1][0] + layout[-1][1]
    n = spec.samples_for_frames(total)
    lead = round(LEAD_IN_S * sr)
    speech = np.zeros(n, np.float32)
    speech[lead : lead + utt.audio.size] = utt.audio[: n - lead]
    bed = ambience(plan.ambience, n, sr, rng)
    audio = mix_under(speech, bed, plan.ambience_db) if plan.ambience != "silence" else speech
    words = tuple(WordTiming(w.word, w.start + LEAD_IN_S, w.end + LEAD_IN_S) for w in utt.words)

    motions = parse_motion(answer.motion)
    avatar = identity_for(seed, plan.split, plan.avatar_identity, "avatar")
    mouth = mouth_track(utt.phonemes, total, fps, offset=-LEAD_IN_S)  # (F, 2)
    states = states_for_clip(total, fps, mouth, motions, seed=plan.seed)
    frames = render_frames(avatar, states, spec.height)  # (F, H, W, 3)

    clips = []
    for j, (start, count) in enumerate(layout):
        t0, t1 = start / fps, (start + count) / fps
        said = [w.word for w in words if t0 <= (w.start + w.end) / 2 < t1]
        clips.append(
            ClipTarget(j, start, count, " ".join(said), _clip_motion(motions, t0, t1, 0.2))
        )
    return DialogueSample(
        plan=plan,
        question=question,
        answer=answer,
        directive=format_directive(answer),
        user_audio=user_audio,
        user_frames=user_frames,
        audio=audio,
        speech_audio=speech,
        frames=frames,
        mouth=mouth.astype(np.float32),
        clips=tuple(clips),
        words=words,
        avatar_identity=avatar,
        user_identity=user_identity,
        sample_rate=sr,
        fps=fps,
        meta={"plan": asdict(plan)},
    )


def resample_user_audio(sample: DialogueSample, rate: int) -> np.ndarray | None:
    """The visitor's audio at another rate (e.g. 24 kHz for a model that wants it)."""
    if sample.user_audio is None:
        return None
    return resample(sample.user_audio, USER_SAMPLE_RATE, rate)
