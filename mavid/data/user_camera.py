"""The visitor's camera: a drawn person who may hold up a prop or make a gesture.

Visual intents in `domain.py` depend on what is shown here (ticket vs map, thumbs up vs down),
so each prop has a distinct shape and colour that survives 128x128.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mavid.data.domain import PROPS
from mavid.data.faces import SUPERSAMPLE, FaceState, Identity, render_canvas

__all__ = ["render_user_frames"]


def _draw_prop(d: ImageDraw.ImageDraw, prop: str, s: int, skin, jx: float, jy: float) -> None:
    cx, cy = 0.76 * s + jx, 0.74 * s + jy
    u = s / 100  # one percent of the frame
    if prop == "none":
        return
    if prop in ("thumbs_up", "thumbs_down"):
        line = tuple(int(c * 0.6) for c in skin)
        w = max(1, int(u))
        d.rounded_rectangle(
            [cx - 11 * u, cy - 10 * u, cx + 11 * u, cy + 10 * u],
            radius=4 * u,
            fill=skin,
            outline=line,
            width=w,
        )
        for k in range(1, 4):  # folded fingers
            y = cy - 10 * u + k * 5 * u
            d.line([(cx - 2 * u, y), (cx + 11 * u, y)], fill=line, width=w)
        if prop == "thumbs_up":
            thumb = [cx - 11 * u, cy - 30 * u, cx - 1 * u, cy - 6 * u]
        else:
            thumb = [cx - 11 * u, cy + 6 * u, cx - 1 * u, cy + 30 * u]
        d.rounded_rectangle(thumb, radius=5 * u, fill=skin, outline=line, width=w)
        return
    # a hand holding the object from below
    hand = [cx - 6 * u, cy + 6 * u, cx + 6 * u, cy + 16 * u]
    if prop == "ticket":
        d.rectangle([cx - 16 * u, cy - 8 * u, cx + 16 * u, cy + 8 * u], fill=(250, 170, 40))
        d.rectangle([cx - 16 * u, cy - 8 * u, cx - 8 * u, cy + 8 * u], fill=(200, 60, 40))
        for k in range(3):
            d.line(
                [(cx - 5 * u, cy - 4 * u + 4 * k * u), (cx + 13 * u, cy - 4 * u + 4 * k * u)],
                fill=(90, 50, 20),
                width=max(1, int(u)),
            )
    elif prop == "map":
        d.rectangle([cx - 28 * u, cy - 18 * u, cx + 28 * u, cy + 14 * u], fill=(235, 230, 200))
        d.rectangle([cx - 24 * u, cy - 14 * u, cx - 4 * u, cy], fill=(120, 190, 120))
        d.rectangle([cx + 2 * u, cy - 8 * u, cx + 24 * u, cy + 10 * u], fill=(130, 170, 230))
        d.line(
            [(cx - 26 * u, cy + 6 * u), (cx + 26 * u, cy - 16 * u)],
            fill=(200, 50, 50),
            width=int(2 * u),
        )
        for k in (-9, 9):
            d.line(
                [(cx + k * u, cy - 18 * u), (cx + k * u, cy + 14 * u)],
                fill=(180, 175, 150),
                width=int(u),
            )
    elif prop == "camera":
        d.rounded_rectangle(
            [cx - 16 * u, cy - 10 * u, cx + 16 * u, cy + 10 * u], radius=3 * u, fill=(30, 30, 35)
        )
        d.ellipse([cx - 8 * u, cy - 8 * u, cx + 8 * u, cy + 8 * u], fill=(90, 90, 100))
        d.ellipse([cx - 5 * u, cy - 5 * u, cx + 5 * u, cy + 5 * u], fill=(20, 40, 80))
        d.rectangle([cx + 9 * u, cy - 14 * u, cx + 15 * u, cy - 10 * u], fill=(200, 200, 200))
    elif prop == "umbrella":
        d.line([(cx, cy + 14 * u), (cx, cy - 20 * u)], fill=(40, 40, 40), width=int(2 * u))
        d.pieslice(
            [cx - 24 * u, cy - 34 * u, cx + 24 * u, cy - 6 * u], 180, 360, fill=(170, 30, 140)
        )
        d.arc(
            [cx, cy + 10 * u, cx + 8 * u, cy + 18 * u], 0, 180, fill=(40, 40, 40), width=int(2 * u)
        )
    elif prop == "backpack":
        d.rounded_rectangle(
            [cx - 17 * u, cy - 20 * u, cx + 17 * u, cy + 14 * u], radius=6 * u, fill=(40, 110, 60)
        )
        d.rounded_rectangle(
            [cx - 11 * u, cy - 2 * u, cx + 11 * u, cy + 11 * u], radius=3 * u, fill=(30, 85, 45)
        )
        d.arc(
            [cx - 9 * u, cy - 28 * u, cx + 9 * u, cy - 12 * u],
            180,
            360,
            fill=(30, 30, 30),
            width=int(2 * u),
        )
    else:
        raise ValueError(f"unknown prop {prop!r}; one of {PROPS}")
    d.rounded_rectangle(hand, radius=3 * u, fill=skin)


def render_user_frames(
    identity: Identity, prop: str, num_frames: int, rng: np.random.Generator, size: int = 128
) -> np.ndarray:
    """(num_frames, size, size, 3) uint8: the visitor, holding `prop` up to the camera."""
    if prop not in PROPS:
        raise ValueError(f"unknown prop {prop!r}; one of {PROPS}")
    frames = []
    for i in range(num_frames):
        st = FaceState(
            head_dx=float(rng.normal(0, 1.5)),
            head_dy=float(rng.normal(0, 1.0)),
            tilt=float(rng.normal(0, 2.0)),
            blink=1.0 if rng.random() < 0.1 else 0.0,
            mouth_open=float(rng.uniform(0, 0.3)) if i % 2 else 0.0,
        )
        img = render_canvas(identity, st, size)
        s = size * SUPERSAMPLE
        _draw_prop(ImageDraw.Draw(img), prop, s, identity.skin, *rng.normal(0, s * 0.015, 2))
        frames.append(np.asarray(img.resize((size, size), Image.LANCZOS), dtype=np.uint8))
    return np.stack(frames) if frames else np.zeros((0, size, size, 3), np.uint8)
