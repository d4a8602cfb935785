"""Procedurally drawn talking heads: identity, visemes, blinks, sway and directed motions.

Frames are drawn with PIL at `SUPERSAMPLE`x the output size and downsampled (LANCZOS), so edges
are anti-aliased. Everything is a pure function of (identity, per-frame state): the same inputs
give the same pixels, which keeps the world deterministic from its seed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mavid.data.speech import PhonemeTiming

__all__ = [
    "MOTIONS",
    "MOTION_SECONDS",
    "FaceState",
    "Identity",
    "mouth_region",
    "mouth_track",
    "parse_motion",
    "render_canvas",
    "render_face",
    "render_frames",
    "render_reference_face",
    "sample_identity",
    "states_for_clip",
    "viseme",
]

SUPERSAMPLE = 2
# The part of a frame (rows, cols as fractions of its height, width) that holds the mouth
# whatever the sway, nod or tilt: 64 x 64 px of a 128-px frame.
MOUTH_REGION = ((46 / 128, 110 / 128), (32 / 128, 96 / 128))
MOTIONS = ("nod", "shake", "tilt", "smile", "look away", "wave")
# How long each motion lasts from its start (smile holds to the end of the answer).
MOTION_SECONDS = {
    "nod": 1.8,
    "shake": 2.0,
    "tilt": 2.4,
    "look away": 2.2,
    "wave": 2.4,
    "smile": 1e9,
}
SCENES = ("gallery", "library", "garden", "office", "lobby")
HAIR_STYLES = ("short", "long", "bald", "bun", "curly", "bob")

_SKINS = [
    (255, 224, 196),
    (241, 194, 160),
    (224, 172, 128),
    (198, 134, 90),
    (141, 85, 54),
    (92, 58, 38),
    (250, 210, 180),
    (170, 110, 70),
]
_HAIRS = [
    (30, 22, 18),
    (80, 50, 30),
    (150, 100, 50),
    (220, 190, 120),
    (160, 40, 20),
    (120, 120, 125),
    (235, 235, 230),
    (60, 30, 60),
]
_EYES = [(60, 90, 160), (70, 120, 70), (100, 65, 35), (40, 30, 25), (110, 110, 120)]


@dataclass(frozen=True)
class Identity:
    """Who the avatar is: everything that must stay the same across frames and clips."""

    face_width: float = 0.26  # half-width of the face, fraction of the frame
    face_height: float = 0.33  # half-height of the face
    jaw: float = 0.5  # 0 round chin .. 1 square jaw
    skin: tuple[int, int, int] = (241, 194, 160)
    hair_style: str = "short"
    hair: tuple[int, int, int] = (80, 50, 30)
    eyes: tuple[int, int, int] = (60, 90, 160)
    eye_spacing: float = 0.11  # eye centre offset from the face centre, fraction of the frame
    lips: tuple[int, int, int] = (190, 90, 90)
    clothes: tuple[int, int, int] = (40, 80, 140)
    collar: tuple[int, int, int] = (240, 240, 240)
    scene: str = "gallery"
    scene_hue: tuple[int, int, int] = (180, 170, 150)
    accent: tuple[int, int, int] = (150, 60, 50)
    glasses: bool = False

    def __post_init__(self) -> None:
        if self.hair_style not in HAIR_STYLES:
            raise ValueError(f"unknown hair style {self.hair_style!r}; one of {HAIR_STYLES}")
        if self.scene not in SCENES:
            raise ValueError(f"unknown scene {self.scene!r}; one of {SCENES}")


@dataclass(frozen=True)
class FaceState:
    """The face's pose and expression in one frame."""

    mouth_open: float = 0.0  # 0 closed .. 1 wide open
    mouth_round: float = 0.0  # 0 spread .. 1 rounded (o, u, w)
    blink: float = 0.0  # 0 open .. 1 closed
    head_dx: float = 0.0  # pixels at output size
    head_dy: float = 0.0
    tilt: float = 0.0  # degrees, positive = counter-clockwise
    yaw: float = 0.0  # -1 .. 1, features turn left/right (look away)
    smile: float = 0.0  # 0 .. 1
    wave: float = 0.0  # 0 hand down .. 1 hand up
    wave_phase: float = 0.0  # radians, the hand's swing


def _rgb(rng: np.random.Generator, palette: Sequence[tuple[int, int, int]], jitter: int = 12):
    base = np.array(palette[int(rng.integers(len(palette)))], dtype=int)
    return tuple(int(c) for c in np.clip(base + rng.integers(-jitter, jitter + 1, 3), 0, 255))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random identity."""

    def color() -> tuple[int, int, int]:
        return tuple(int(c) for c in rng.integers(20, 236, 3))

    return Identity(
        face_width=float(rng.uniform(0.23, 0.29)),
        face_height=float(rng.uniform(0.30, 0.35)),
        jaw=float(rng.uniform(0, 1)),
        skin=_rgb(rng, _SKINS),
        hair_style=HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))],
        hair=_rgb(rng, _HAIRS),
        eyes=_rgb(rng, _EYES, 8),
        eye_spacing=float(rng.uniform(0.095, 0.125)),
        lips=_rgb(rng, [(190, 90, 90), (170, 80, 90), (150, 70, 60), (200, 110, 110)]),
        clothes=color(),
        collar=color(),
        scene=SCENES[int(rng.integers(len(SCENES)))],
        scene_hue=tuple(int(c) for c in rng.integers(90, 230, 3)),
        accent=color(),
        glasses=bool(rng.random() < 0.25),
    )


# ---------------------------------------------------------------- visemes

# (opening, rounding) per IPA symbol (stress and length marks stripped).
_VISEMES: dict[str, tuple[float, float]] = {
    **dict.fromkeys("pbm", (0.0, 0.1)),
    **dict.fromkeys("fv", (0.1, 0.0)),
    **dict.fromkeys("θð", (0.2, 0.0)),
    **dict.fromkeys("tdnlszɾ", (0.25, 0.0)),
    **dict.fromkeys("ʃʒ", (0.3, 0.7)),
    **dict.fromkeys("kgŋhx", (0.35, 0.1)),
    **dict.fromkeys("wʍ", (0.15, 1.0)),
    **dict.fromkeys("ɹr", (0.3, 0.5)),
    "j": (0.3, 0.0),
    **dict.fromkeys("aɑæɐ", (0.9, 0.1)),
    **dict.fromkeys("ʌ", (0.75, 0.1)),
    **dict.fromkeys("ɛe", (0.6, 0.0)),
    **dict.fromkeys("ɜə", (0.45, 0.2)),
    **dict.fromkeys("ɪiy", (0.35, 0.0)),
    **dict.fromkeys("ɔoɒ", (0.7, 0.8)),
    **dict.fromkeys("uʊ", (0.35, 0.9)),
}


def viseme(ipa: str) -> tuple[float, float]:
    """Mouth (opening, rounding) for one espeak IPA phoneme; unknown symbols half-open."""
    core = ipa.strip("ˈˌːˑ'-_ ")
    for ch in core:
        if ch == "t" and core.startswith("tʃ"):
            return _VISEMES["ʃ"]
        if ch == "d" and core.startswith("dʒ"):
            return _VISEMES["ʒ"]
        if ch in _VISEMES:
            return _VISEMES[ch]
    return (0.3, 0.0) if core else (0.0, 0.0)


def mouth_track(
    phonemes: Sequence[PhonemeTiming], num_frames: int, fps: int, offset: float = 0.0
) -> np.ndarray:
    """Per-frame (opening, rounding), (F, 2), from phoneme timing; silence is closed.

    `offset` (seconds) is the time of frame 0 on the phonemes' clock. Each frame averages the
    visemes over its 40 ms window, then a short smoothing stands in for coarticulation.
    """
    out = np.zeros((num_frames, 2), np.float32)
    sub = 4  # sub-samples per frame
    for f in range(num_frames):
        acc = np.zeros(2, np.float32)
        for s in range(sub):
            t = offset + (f + (s + 0.5) / sub) / fps
            for p in phonemes:
                if p.start <= t < p.end:
                    acc += viseme(p.ipa)
                    break
        out[f] = acc / sub
    if num_frames >= 3:
        k = np.array([0.25, 0.5, 0.25], np.float32)
        padded = np.pad(out, ((1, 1), (0, 0)), mode="edge")
        out = np.stack([np.convolve(padded[:, c], k, mode="valid") for c in range(2)], axis=1)
    return out


def parse_motion(motion: str) -> tuple[str, ...]:
    """'nod, smile' -> ('nod', 'smile'); empty for plain QA. Unknown motions raise ValueError."""
    items = [m.strip().lower() for m in motion.replace(";", ",").split(",")]
    items = [m for m in items if m]
    bad = [m for m in items if m not in MOTIONS]
    if bad:
        raise ValueError(f"unknown motion(s) {bad}; the vocabulary is {MOTIONS}")
    return tuple(dict.fromkeys(items))


def _ease(x: np.ndarray) -> np.ndarray:
    """0 outside [0, 1], a smooth bump inside (sin^2)."""
    return np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)


def _blink_times(rng: np.random.Generator, duration: float) -> list[float]:
    times, t = [], float(rng.uniform(0.3, 2.0))
    while t < duration:
        times.append(t)
        t += float(rng.uniform(1.8, 4.5))
    return times


def states_for_clip(
    num_frames: int,
    fps: int,
    mouth: np.ndarray | None = None,
    motions: Sequence[str] = (),
    seed: int = 0,
    start: float = 0.0,
    motion_start: float = 0.2,
) -> list[FaceState]:
    """Face states for frames [start, start + num_frames / fps) of an answer.

    `mouth` is (F, 2) from `mouth_track`; `motions` start at `motion_start` seconds into the
    answer (nod/shake/tilt/look away/wave last ~1.6-2.4 s; smile holds). Blinks and sway are
    drawn from `seed`, over the whole answer, so clips cut from it stay continuous.
    """
    rng = np.random.default_rng(seed)
    t = start + np.arange(num_frames) / fps  # (F,)
    sway_f = rng.uniform(0.15, 0.3, 2)
    sway_p = rng.uniform(0, 2 * np.pi, 2)
    dx = 1.2 * np.sin(2 * np.pi * sway_f[0] * t + sway_p[0])
    dy = 0.6 * np.sin(2 * np.pi * sway_f[1] * t + sway_p[1])
    tilt = 1.5 * np.sin(2 * np.pi * sway_f[1] * 0.7 * t + sway_p[0])
    yaw = np.zeros_like(t)
    smile = np.zeros_like(t)
    wave = np.zeros_like(t)
    blink = np.zeros_like(t)
    horizon = start + num_frames / fps + 5.0
    for b in _blink_times(rng, horizon):
        blink = np.maximum(blink, np.clip(1 - np.abs(t - b) / 0.09, 0, 1))
    t0 = t - motion_start
    m = set(motions)
    if "nod" in m:
        dy += 4.0 * np.sin(2 * np.pi * 1.6 * t0) * _ease(t0 / MOTION_SECONDS["nod"])
    if "shake" in m:
        w = _ease(t0 / MOTION_SECONDS["shake"])
        dx += 3.0 * np.sin(2 * np.pi * 1.7 * t0) * w
        yaw += 0.6 * np.sin(2 * np.pi * 1.7 * t0) * w
    if "tilt" in m:
        tilt += 12.0 * _ease(t0 / MOTION_SECONDS["tilt"])
    if "look away" in m:
        yaw += 0.9 * _ease(t0 / MOTION_SECONDS["look away"])
    if "smile" in m:
        smile = np.clip(t0 / 0.5, 0, 1)
    if "wave" in m:
        wave = _ease(t0 / MOTION_SECONDS["wave"]) ** 0.5
    if mouth is None:
        mouth = np.zeros((num_frames, 2), np.float32)
    if mouth.shape != (num_frames, 2):
        raise ValueError(f"mouth track shape {mouth.shape} != ({num_frames}, 2)")
    speaking = mouth[:, 0]
    dy = dy + 0.8 * speaking  # a slight bob with the syllables
    return [
        FaceState(
            mouth_open=float(mouth[i, 0]),
            mouth_round=float(mouth[i, 1]),
            blink=float(blink[i]),
            head_dx=float(dx[i]),
            head_dy=float(dy[i]),
            tilt=float(tilt[i]),
            yaw=float(np.clip(yaw[i], -1, 1)),
            smile=float(smile[i]),
            wave=float(wave[i]),
            wave_phase=float(2 * np.pi * 2.0 * t0[i]),
        )
        for i in range(num_frames)
    ]


# ---------------------------------------------------------------- drawing


def _shade(c: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(v * k, 0, 255)) for v in c)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    return tuple(round(x * (1 - k) + y * k) for x, y in zip(a, b, strict=True))


@functools.lru_cache(maxsize=64)
def _background(identity: Identity, size: int) -> Image.Image:
    """The scene behind the avatar, drawn once per identity."""
    s = size
    hue = identity.scene_hue
    img = Image.new("RGB", (s, s), hue)
    d = ImageDraw.Draw(img)
    # vertical light gradient
    for y in range(s):
        d.line([(0, y), (s, y)], fill=_shade(hue, 1.08 - 0.25 * y / s))
    acc = identity.accent
    if identity.scene == "gallery":
        d.rectangle([0, int(0.78 * s), s, s], fill=_shade(hue, 0.6))
        for x0, w, h in ((0.04, 0.22, 0.26), (0.74, 0.22, 0.3)):
            box = [int(x0 * s), int(0.14 * s), int((x0 + w) * s), int((0.14 + h) * s)]
            d.rectangle(box, fill=(120, 90, 40))
            inner = [box[0] + s // 40, box[1] + s // 40, box[2] - s // 40, box[3] - s // 40]
            d.rectangle(inner, fill=acc)
            d.ellipse(
                [inner[0] + 4, inner[1] + 6, inner[2] - 6, inner[3] - 10], fill=_shade(acc, 1.4)
            )
    elif identity.scene == "library":
        for row in range(5):
            y0 = int((0.05 + 0.19 * row) * s)
            d.rectangle([0, y0 + int(0.16 * s), s, y0 + int(0.18 * s)], fill=(90, 60, 35))
            x = 0
            k = row * 7 + sum(acc)
            while x < s:
                w = s // 40 + (k * 37) % (s // 30 + 1)
                h = int(0.1 * s + (k * 13) % int(0.05 * s))
                c = _mix(acc, ((k * 50) % 255, (k * 90) % 255, (k * 20) % 255), 0.5)
                d.rectangle([x, y0 + int(0.16 * s) - h, x + w - 1, y0 + int(0.16 * s)], fill=c)
                x += w + 1
                k += 1
    elif identity.scene == "garden":
        for y in range(int(0.62 * s)):
            d.line([(0, y), (s, y)], fill=_mix((140, 190, 240), (230, 240, 250), y / (0.62 * s)))
        d.rectangle([0, int(0.62 * s), s, s], fill=_mix((70, 140, 60), hue, 0.2))
        for cx in (0.1, 0.88):
            d.ellipse(
                [int((cx - 0.12) * s), int(0.3 * s), int((cx + 0.12) * s), int(0.62 * s)],
                fill=_mix((40, 110, 50), acc, 0.2),
            )
        d.ellipse(
            [int(0.78 * s), int(0.05 * s), int(0.92 * s), int(0.19 * s)], fill=(255, 230, 140)
        )
    elif identity.scene == "office":
        d.rectangle([int(0.06 * s), int(0.1 * s), int(0.4 * s), int(0.5 * s)], fill=(200, 225, 245))
        d.line(
            [(int(0.23 * s), int(0.1 * s)), (int(0.23 * s), int(0.5 * s))], fill=hue, width=s // 60
        )
        d.line(
            [(int(0.06 * s), int(0.3 * s)), (int(0.4 * s), int(0.3 * s))], fill=hue, width=s // 60
        )
        d.rectangle([0, int(0.72 * s), s, s], fill=_shade(acc, 0.7))
    else:  # lobby
        for i in range(0, s, s // 8):
            d.line([(i, int(0.75 * s)), (i - s // 4, s)], fill=_shade(hue, 0.75), width=2)
        d.rectangle([0, int(0.75 * s) - 2, s, int(0.75 * s) + 2], fill=_shade(hue, 0.6))
        pot = [int(0.8 * s), int(0.6 * s), int(0.95 * s), int(0.78 * s)]
        d.rectangle(pot, fill=_shade(acc, 0.8))
        for a in range(7):
            ang = math.pi * (0.15 + 0.7 * a / 6)
            x1 = pot[0] + (pot[2] - pot[0]) // 2 + int(math.cos(ang) * 0.14 * s)
            y1 = pot[1] - int(math.sin(ang) * 0.3 * s)
            d.line([((pot[0] + pot[2]) // 2, pot[1]), (x1, y1)], fill=(50, 120, 60), width=s // 40)
    return img.filter(ImageFilter.GaussianBlur(radius=s / 200))


def _draw_body(d: ImageDraw.ImageDraw, idt: Identity, s: int, dx: float, st: FaceState) -> None:
    cx = s / 2 + dx
    # neck
    nw = 0.1 * s
    d.rectangle([cx - nw / 2, 0.62 * s, cx + nw / 2, 0.86 * s], fill=_shade(idt.skin, 0.85))
    # shoulders + torso
    d.ellipse([cx - 0.48 * s, 0.8 * s, cx + 0.48 * s, 1.45 * s], fill=idt.clothes)
    d.polygon([(cx - 0.09 * s, 0.8 * s), (cx + 0.09 * s, 0.8 * s), (cx, 0.92 * s)], fill=idt.collar)
    d.polygon(
        [(cx - 0.04 * s, 0.8 * s), (cx + 0.04 * s, 0.8 * s), (cx, 0.87 * s)],
        fill=_shade(idt.skin, 0.85),
    )
    if st.wave > 0.02:
        # the right arm (viewer's left) raised, forearm swinging
        sh = (cx - 0.36 * s, 0.92 * s)
        elbow = (cx - 0.42 * s, (0.92 - 0.2 * st.wave) * s)
        ang = -math.pi / 2 + 0.45 * math.sin(st.wave_phase) * st.wave
        hand = (elbow[0] + math.cos(ang) * 0.2 * s * st.wave, elbow[1] + math.sin(ang) * 0.22 * s)
        w = int(0.09 * s)
        d.line([sh, elbow], fill=_shade(idt.clothes, 0.9), width=w)
        d.line([elbow, hand], fill=_shade(idt.clothes, 0.9), width=w)
        r = 0.05 * s
        d.ellipse([hand[0] - r, hand[1] - 1.2 * r, hand[0] + r, hand[1] + r], fill=idt.skin)
        for k in range(4):  # fingers
            fx = hand[0] - r * 0.75 + k * r * 0.5
            d.line([(fx, hand[1] - r), (fx, hand[1] - 2 * r)], fill=idt.skin, width=max(2, s // 80))


def _draw_head(idt: Identity, s: int, st: FaceState) -> Image.Image:
    """The head on a transparent layer, centred at (s/2, 0.44 s), before rotation."""
    layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = s / 2, 0.44 * s
    fw, fh = idt.face_width * s, idt.face_height * s
    hair = idt.hair
    # hair behind the head
    if idt.hair_style == "long":
        d.rounded_rectangle(
            [cx - fw * 1.15, cy - fh * 1.05, cx + fw * 1.15, cy + fh * 1.25],
            radius=int(fw * 0.8),
            fill=hair,
        )
    elif idt.hair_style == "bun":
        r = fw * 0.45
        d.ellipse([cx - r, cy - fh * 1.25 - r, cx + r, cy - fh * 1.25 + r], fill=hair)
    elif idt.hair_style == "bob":
        d.rounded_rectangle(
            [cx - fw * 1.15, cy - fh * 1.08, cx + fw * 1.15, cy + fh * 0.55],
            radius=int(fw * 0.7),
            fill=hair,
        )
    # ears
    er = fw * 0.16
    for side in (-1, 1):
        ex = cx + side * fw * 0.98 - st.yaw * fw * 0.12
        d.ellipse([ex - er, cy - er * 1.4, ex + er, cy + er * 1.4], fill=_shade(idt.skin, 0.92))
    # face: an ellipse, squared off towards the jaw
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=idt.skin)
    if idt.jaw > 0.05:
        jw = fw * (0.55 + 0.35 * idt.jaw)
        d.rounded_rectangle(
            [cx - jw, cy, cx + jw, cy + fh * 0.97],
            radius=int(fw * (0.6 - 0.3 * idt.jaw)),
            fill=idt.skin,
        )
    # cheeks when smiling
    if st.smile > 0.05:
        cr = fw * 0.16
        blush = (*_mix(idt.skin, (230, 120, 120), 0.35 * st.smile), 255)
        for side in (-1, 1):
            bx = cx + side * fw * 0.55 - st.yaw * fw * 0.3
            d.ellipse(
                [bx - cr, cy + fh * 0.12 - cr * 0.6, bx + cr, cy + fh * 0.12 + cr * 0.6], fill=blush
            )
    # front hair
    if idt.hair_style in ("short", "long", "bun", "bob"):
        d.chord([cx - fw * 1.06, cy - fh * 1.1, cx + fw * 1.06, cy + fh * 0.3], 180, 360, fill=hair)
        d.ellipse([cx - fw * 1.06, cy - fh * 0.55, cx - fw * 0.3, cy - fh * 0.2], fill=hair)
        if idt.hair_style != "short":
            for side in (-1, 1):
                x0 = cx + side * fw * 0.98
                d.rectangle(
                    [
                        min(x0, x0 - side * fw * 0.18),
                        cy - fh * 0.5,
                        max(x0, x0 - side * fw * 0.18),
                        cy + fh * 0.35,
                    ],
                    fill=hair,
                )
    elif idt.hair_style == "curly":
        for k in range(11):
            a = math.pi * (1.0 + k / 10)
            hx, hy = cx + math.cos(a) * fw * 0.95, cy - fh * 0.25 + math.sin(a) * fh * 0.85
            r = fw * 0.28
            d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=hair)
    # features shift with yaw (the head turns)
    fx = cx - st.yaw * fw * 0.35
    ey = cy - fh * 0.08
    es = idt.eye_spacing * s * (1 - 0.15 * abs(st.yaw))
    ew, eh = fw * 0.22, fh * 0.11
    brow_lift = -0.03 * fh * st.smile
    for side in (-1, 1):
        ex = fx + side * es
        d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(250, 250, 250))
        ir = eh * 0.95
        ix = ex - st.yaw * ew * 0.55
        d.ellipse([ix - ir, ey - ir, ix + ir, ey + ir], fill=idt.eyes)
        d.ellipse(
            [ix - ir * 0.45, ey - ir * 0.45, ix + ir * 0.45, ey + ir * 0.45], fill=(15, 15, 20)
        )
        d.ellipse(
            [ix - ir * 0.1 + ir * 0.35, ey - ir * 0.5, ix + ir * 0.35 + ir * 0.2, ey - ir * 0.15],
            fill=(255, 255, 255),
        )
        if st.blink > 0.02:  # the lid comes down from the top
            lid = ey - eh + 2 * eh * st.blink
            d.rectangle([ex - ew - 1, ey - eh - 2, ex + ew + 1, lid], fill=_shade(idt.skin, 0.93))
            d.line(
                [(ex - ew, lid), (ex + ew, lid)], fill=_shade(idt.skin, 0.6), width=max(1, s // 160)
            )
        by = ey - eh * 2.2 + brow_lift
        d.line(
            [(ex - ew * 1.1, by + side * 0), (ex + ew * 1.1, by - eh * 0.3)][
                :: 1 if side > 0 else -1
            ],
            fill=_shade(hair, 0.8),
            width=max(2, s // 70),
        )
        if idt.glasses:
            gr = ew * 1.35
            d.ellipse(
                [ex - gr, ey - gr * 0.8, ex + gr, ey + gr * 0.8],
                outline=(30, 30, 30),
                width=max(2, s // 120),
            )
    if idt.glasses:
        d.line(
            [(fx - es + ew * 1.35, ey), (fx + es - ew * 1.35, ey)],
            fill=(30, 30, 30),
            width=max(2, s // 120),
        )
    # nose
    ny = cy + fh * 0.2
    d.line(
        [(fx + fw * 0.02, ey + eh), (fx - fw * 0.05, ny), (fx + fw * 0.07, ny)],
        fill=_shade(idt.skin, 0.75),
        width=max(2, s // 100),
    )
    # mouth: width shrinks when rounded and grows with a smile, height with the opening
    my = cy + fh * 0.5
    mw = fw * (0.42 - 0.16 * st.mouth_round + 0.08 * st.smile)
    mh = fh * (0.015 + 0.22 * st.mouth_open)
    lip = idt.lips
    curve = fh * 0.08 * st.smile
    if st.mouth_open < 0.06:
        # closed lips, corners up when smiling
        d.line(
            [(fx - mw, my - curve), (fx, my + curve * 0.4), (fx + mw, my - curve)],
            fill=_shade(lip, 0.8),
            width=max(3, s // 55),
            joint="curve",
        )
    else:
        d.ellipse([fx - mw, my - mh - curve * 0.3, fx + mw, my + mh], fill=lip)
        iw, ih = mw * 0.8, mh * 0.72
        d.ellipse([fx - iw, my - ih - curve * 0.3, fx + iw, my + ih], fill=(70, 20, 30))
        if st.mouth_open > 0.3:  # upper teeth
            tw = iw * 0.75
            d.chord(
                [fx - tw, my - ih - curve * 0.3, fx + tw, my + ih * 0.2],
                180,
                360,
                fill=(245, 245, 235),
            )
            d.ellipse(
                [fx - iw * 0.5, my + ih * 0.3, fx + iw * 0.5, my + ih * 0.95], fill=(200, 90, 100)
            )
    return layer


def render_canvas(identity: Identity, state: FaceState, size: int = 128) -> Image.Image:
    """The frame at SUPERSAMPLE x `size`, before downsampling (others draw on top of it)."""
    s = size * SUPERSAMPLE
    img = _background(identity, s).copy()
    k = SUPERSAMPLE
    d = ImageDraw.Draw(img)
    _draw_body(d, identity, s, state.head_dx * k * 0.4, state)
    head = _draw_head(identity, s, state)
    # rotate only the head's box (with room to swing): the same pixels, half the work
    x0, y0, x1, y1 = head.getbbox() or (0, 0, s, s)
    pad = s // 8
    x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(s, x1 + pad), min(s, y1 + pad)
    head = head.crop((x0, y0, x1, y1))
    if abs(state.tilt) > 0.05:
        pivot = (s / 2 - x0, 0.7 * s - y0)
        head = head.rotate(state.tilt, resample=Image.BICUBIC, center=pivot)
    img.paste(head, (x0 + round(state.head_dx * k), y0 + round(state.head_dy * k)), head)
    return img


def render_face(identity: Identity, state: FaceState, size: int = 128) -> np.ndarray:
    """One frame, (size, size, 3) uint8 RGB."""
    img = render_canvas(identity, state, size).resize((size, size), Image.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def render_frames(identity: Identity, states: Sequence[FaceState], size: int = 128) -> np.ndarray:
    """(F, size, size, 3) uint8 RGB."""
    if not states:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack([render_face(identity, st, size) for st in states])


def render_reference_face(identity: Identity, size: int = 128) -> np.ndarray:
    """The idle face (eyes open, mouth closed, facing the camera): (size, size, 3) uint8."""
    return render_face(identity, FaceState(), size)


def with_scene(identity: Identity, scene: str) -> Identity:
    """The same person in another scene (used to build hard negatives for the meters)."""
    return replace(identity, scene=scene)


def mouth_region(height: int, width: int) -> tuple[slice, slice]:
    """`MOUTH_REGION` on a (height, width) grid (pixels, or latent cells): the rows and columns
    of every cell it touches."""
    (top, bottom), (left, right) = MOUTH_REGION
    rows = slice(math.floor(top * height), math.ceil(bottom * height))
    cols = slice(math.floor(left * width), math.ceil(right * width))
    return rows, cols
