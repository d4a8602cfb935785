"""A SyncNet-style lip-sync score: mouth opening seen in the frames vs the audio's envelope.

The mouth opening is read from each frame by a small CNN (`MouthRegressor`) trained on the
world's ground truth (rendered faces with known opening/rounding) and frozen; its weights ship
in `weights/mouth_regressor.safetensors` (~300 KB). The audio side is the per-frame log energy
of the speech band. An offset search over +/-15 frames finds the shift with the highest
correlation; confidence = best correlation - median correlation (as SyncNet's min-vs-median).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mavid.data.faces import MOTIONS, FaceState, mouth_region, render_face, sample_identity

__all__ = [
    "WEIGHTS",
    "MouthRegressor",
    "SyncResult",
    "audio_envelope",
    "lip_sync",
    "load_mouth_regressor",
    "mouth_crop",
    "mouth_opening",
    "sync_offset",
    "train_mouth_regressor",
]

WEIGHTS = Path(__file__).parent / "weights" / "mouth_regressor.safetensors"
MAX_OFFSET = 15
_CROP = mouth_region(128, 128)  # rows, cols


def mouth_crop(frames: np.ndarray) -> torch.Tensor:
    """(F, 128, 128, 3) uint8 -> (F, 3, 64, 64) float in [0, 1]."""
    if frames.ndim != 4 or frames.shape[1:] != (128, 128, 3):
        raise ValueError(f"expected (F, 128, 128, 3) frames, got {frames.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frames[:, _CROP[0], _CROP[1]]))
    return x.permute(0, 3, 1, 2).float() / 255.0


class MouthRegressor(nn.Module):
    """(B, 3, 64, 64) mouth crop -> (B, 2): mouth opening and rounding in [0, 1]."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 5, stride=2, padding=2),
            nn.GELU(),  # (B, w, 32, 32)
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),  # (B, 2w, 16, 16)
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            nn.GELU(),  # (B, 2w, 8, 8)
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1),
            nn.GELU(),  # (B, 4w, 4, 4)
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),  # (B, 4w)
            nn.Linear(4 * w, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def _random_state(rng: np.random.Generator) -> FaceState:
    # mouth values and head poses spread wider than speech needs, so the meter generalises
    m = set(rng.choice(MOTIONS, size=int(rng.integers(0, 3)), replace=False))
    return FaceState(
        mouth_open=float(rng.choice([0.0, rng.uniform(0, 1)], p=[0.2, 0.8])),
        mouth_round=float(rng.uniform(0, 1)),
        blink=float(rng.choice([0.0, rng.uniform(0, 1)], p=[0.8, 0.2])),
        head_dx=float(rng.normal(0, 2.5)),
        head_dy=float(rng.normal(0, 2.5)),
        tilt=float(rng.normal(0, 6.0 if "tilt" in m else 2.0)),
        yaw=float(rng.uniform(-0.9, 0.9)) if "look away" in m or "shake" in m else 0.0,
        smile=float(rng.uniform(0, 1)) if "smile" in m else 0.0,
        wave=float(rng.uniform(0, 1)) if "wave" in m else 0.0,
        wave_phase=float(rng.uniform(0, 6.3)),
    )


def train_mouth_regressor(
    num_frames: int = 12_000, steps: int = 3000, seed: int = 0, batch: int = 64
) -> MouthRegressor:
    """Train on freshly rendered faces with known mouth state (minutes on 2 cores)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ids = [sample_identity(rng) for _ in range(max(8, num_frames // 40))]
    states = [_random_state(rng) for _ in range(num_frames)]
    frames = np.stack([render_face(ids[i % len(ids)], s) for i, s in enumerate(states)])
    x = mouth_crop(frames)  # (N, 3, 64, 64)
    y = torch.tensor([[s.mouth_open, s.mouth_round] for s in states], dtype=torch.float32)
    model = MouthRegressor()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,))
        xb = x[idx]
        # codec-like degradation: noise and brightness jitter
        xb = (xb * (1 + 0.1 * torch.randn(batch, 1, 1, 1)) + 0.03 * torch.randn_like(xb)).clamp(
            0, 1
        )
        loss = nn.functional.mse_loss(model(xb), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def load_mouth_regressor(path: Path = WEIGHTS) -> MouthRegressor:
    """The frozen, shipped regressor."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} missing: run `python -m mavid.eval.lipsync` to train it")
    model = MouthRegressor()
    model.load_state_dict(load_file(str(path)))
    model.requires_grad_(False)
    return model.eval()


@torch.inference_mode()
def mouth_opening(frames: np.ndarray, model: MouthRegressor | None = None) -> np.ndarray:
    """(F, 128, 128, 3) uint8 -> (F,) float32 mouth opening in [0, 1]."""
    model = model or load_mouth_regressor()
    out = [model(mouth_crop(frames[i : i + 256]))[:, 0] for i in range(0, len(frames), 256)]
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros(0, np.float32)


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: int, num_frames: int) -> np.ndarray:
    """(N,) audio -> (num_frames,) per-frame log energy of the speech band (300-3400 Hz)."""
    audio = np.asarray(audio, dtype=np.float32)
    hop = sample_rate // fps
    spec = np.fft.rfft(audio)
    f = np.fft.rfftfreq(audio.size, 1 / sample_rate)
    spec[(f < 300) | (f > 3400)] = 0
    band = np.fft.irfft(spec, audio.size)
    need = num_frames * hop
    band = np.pad(band, (0, max(0, need - band.size)))[:need].reshape(num_frames, hop)
    return np.log10(np.mean(band**2, axis=1) + 1e-6).astype(np.float32)


@dataclass(frozen=True)
class SyncResult:
    offset: int  # frames; > 0: the audio lags the video
    confidence: float  # best correlation - median correlation over the offsets
    correlation: float  # at the best offset
    correlations: tuple[float, ...]  # for offsets -max_offset..max_offset


def sync_offset(
    mouth: np.ndarray, envelope: np.ndarray, max_offset: int = MAX_OFFSET
) -> SyncResult:
    """Offset k maximising corr(mouth[t], envelope[t + k]) for |k| <= max_offset."""
    if mouth.shape != envelope.shape or mouth.ndim != 1:
        raise ValueError(f"mouth {mouth.shape} and envelope {envelope.shape} must be equal 1-D")
    if mouth.size < 2 * max_offset + 5:
        raise ValueError(f"need at least {2 * max_offset + 5} frames, got {mouth.size}")
    corrs = []
    for k in range(-max_offset, max_offset + 1):
        a = mouth[max(0, -k) : mouth.size - max(0, k)]
        b = envelope[max(0, k) : envelope.size - max(0, -k)]
        if a.std() < 1e-6 or b.std() < 1e-6:
            corrs.append(0.0)
        else:
            corrs.append(float(np.corrcoef(a, b)[0, 1]))
    c = np.array(corrs)
    best = int(np.argmax(c))
    return SyncResult(
        offset=best - max_offset,
        confidence=float(c[best] - np.median(c)),
        correlation=float(c[best]),
        correlations=tuple(float(v) for v in c),
    )


def lip_sync(
    frames: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    fps: int,
    model: MouthRegressor | None = None,
) -> SyncResult:
    """Lip-sync of one clip or answer: (F, 128, 128, 3) frames and their (N,) audio."""
    mouth = mouth_opening(frames, model)
    return sync_offset(mouth, audio_envelope(audio, sample_rate, fps, frames.shape[0]))


def main() -> None:
    """Train the regressor on rendered ground truth and write the shipped weights."""
    import time

    t = time.perf_counter()
    model = train_mouth_regressor()
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(WEIGHTS))
    rng = np.random.default_rng(123)
    idt = sample_identity(rng)
    states = [_random_state(rng) for _ in range(400)]
    frames = np.stack([render_face(idt, s) for s in states])
    pred = mouth_opening(frames, model)
    truth = np.array([s.mouth_open for s in states])
    print(
        f"trained in {time.perf_counter() - t:.0f} s; held-out identity: "
        f"corr {np.corrcoef(pred, truth)[0, 1]:.3f}, MAE {np.abs(pred - truth).mean():.3f}; "
        f"{WEIGHTS.stat().st_size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
