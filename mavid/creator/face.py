"""The default idle face: a deterministic anti-aliased cartoon face drawn with PIL."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def default_face(height: int, width: int, mouth_open: float = 0.15) -> np.ndarray:
    """(H, W, 3) uint8 RGB face on a plain background, drawn at 4x and downsampled."""
    s = 4
    w, h = width * s, height * s
    img = Image.new("RGB", (w, h), (46, 64, 96))
    d = ImageDraw.Draw(img)
    cx, cy = w / 2, h * 0.52
    fw, fh = w * 0.36, h * 0.42
    d.ellipse([cx - fw * 1.08, cy - fh * 1.12, cx + fw * 1.08, cy + fh * 0.2], fill=(58, 40, 30))
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=(236, 188, 150))
    ex, ey, er = fw * 0.42, cy - fh * 0.18, w * 0.045
    for sx in (-1, 1):
        x = cx + sx * ex
        d.ellipse([x - er * 1.6, ey - er, x + er * 1.6, ey + er], fill=(255, 255, 255))
        d.ellipse([x - er * 0.8, ey - er * 0.8, x + er * 0.8, ey + er * 0.8], fill=(60, 40, 30))
        d.line(
            [x - er * 1.8, ey - er * 2.2, x + er * 1.8, ey - er * 2.5],
            fill=(70, 45, 30),
            width=max(1, int(w * 0.012)),
        )
    d.polygon(
        [(cx, cy - fh * 0.05), (cx - w * 0.03, cy + fh * 0.18), (cx + w * 0.03, cy + fh * 0.18)],
        fill=(214, 160, 125),
    )
    mw, my = fw * 0.45, cy + fh * 0.45
    mh = max(h * 0.01, fh * 0.3 * mouth_open)
    d.ellipse([cx - mw, my - mh, cx + mw, my + mh], fill=(150, 50, 60))
    img = img.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize + centre-crop an (H, W, 3) image to (height, width, 3) uint8 RGB."""
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"reference image must be (H, W, 3) RGB, got shape {image.shape}")
    img = Image.fromarray(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    scale = max(width / img.width, height / img.height)
    img = img.resize(
        (max(width, round(img.width * scale)), max(height, round(img.height * scale))),
        Image.Resampling.LANCZOS,
    )
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return np.asarray(img.crop((left, top, left + width, top + height)), dtype=np.uint8).copy()
