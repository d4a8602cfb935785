"""The tiny Conductor's own ear: a small CTC recognizer of letters, trained on espeak-ng speech.

Why beside PocketSphinx: PocketSphinx's acoustic model was trained on people's speech and
writes the world's held-out espeak voices down with a WER of ~0.8; an ear trained on hundreds
of espeak voices at random rates and pitches (never the held-out ones, `mavid.train.ear`) hears
those far better, while it knows nothing of people's voices. `mavid.conductor.hearing` hears
with it first and keeps its letters where it is sure of them, else asks PocketSphinx.

Letters, not words: a held-out question may use words no training text had ("I hurt my hand");
a letter recognizer still writes them down, near enough for the knowledge base's respelling.
Log-mel at 100 Hz, a strided convolution to 50 Hz, a transformer encoder, one linear layer to
the alphabet plus CTC's blank; greedy decoding (~17 ms for a 4-s turn on one core).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.audio_utils import mel_filter_bank

from mavid.asr import ASR_SAMPLE_RATE, checked_mono, normalize_text
from mavid.data.speech import resample

__all__ = ["ALPHABET", "EAR_DIR", "Ear", "EarConfig", "decode_greedy", "encode_text"]

EAR_DIR = "ear"  # beside the Thinker it hears for
_CONFIG = "ear.json"
_WEIGHTS = "model.safetensors"
ALPHABET = " abcdefghijklmnopqrstuvwxyz'"  # index + 1 (0 is CTC's blank)
_INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}
MAX_SECONDS = 30.0  # longer turns are cut (a turn is a question, not a lecture)


@dataclass(frozen=True)
class EarConfig:
    n_mels: int = 80
    n_fft: int = 400
    hop: int = 160  # 10 ms at 16 kHz
    dim: int = 160
    layers: int = 5
    heads: int = 4
    ffn: int = 640
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if min(self.n_mels, self.n_fft, self.hop, self.dim, self.layers, self.heads) < 1:
            raise ValueError(f"ear sizes must be positive: {self}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be a multiple of heads {self.heads}")


def encode_text(text: str) -> list[int]:
    """A transcript's letters as CTC targets (normalized first: lower case, a-z, ' and spaces)."""
    return [_INDEX[c] for c in normalize_text(text)]


def decode_greedy(ids: torch.Tensor) -> str:
    """Best path: repeats merged, blanks dropped. `ids`: (T,) argmax indices."""
    out, last = [], 0
    for i in ids.tolist():
        if i != last and i != 0:
            out.append(ALPHABET[i - 1])
        last = i
    return " ".join("".join(out).split())


def _positions(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10_000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


class Ear(nn.Module):
    """16 kHz audio -> letters. `forward` gives CTC log-probabilities for training."""

    def __init__(self, config: EarConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or EarConfig()
        fb = mel_filter_bank(
            num_frequency_bins=c.n_fft // 2 + 1,
            num_mel_filters=c.n_mels,
            min_frequency=20.0,
            max_frequency=ASR_SAMPLE_RATE / 2,
            sampling_rate=ASR_SAMPLE_RATE,
            norm="slaney",
            mel_scale="slaney",
        )
        self.register_buffer("mel", torch.from_numpy(np.asarray(fb, np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(c.n_fft), persistent=False)
        self.front = nn.Sequential(
            nn.Conv1d(c.n_mels, c.dim, 3, padding=1),
            nn.GELU(),
            nn.Conv1d(c.dim, c.dim, 3, stride=2, padding=1),
            nn.GELU(),
        )
        layer = nn.TransformerEncoderLayer(
            c.dim, c.heads, c.ffn, c.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, len(ALPHABET) + 1)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) 16 kHz audio -> (B, T, n_mels) log-mel, each utterance normalised over time
        (so the level of the microphone does not matter)."""
        c = self.config
        spec = torch.stft(
            wave.float(), c.n_fft, c.hop, window=self.window, return_complex=True
        ).abs()
        logmel = torch.log(torch.clamp(self.mel.T @ spec, min=1e-5)).transpose(1, 2)
        mean = logmel.mean(dim=1, keepdim=True)
        std = logmel.std(dim=1, keepdim=True).clamp(min=1e-3)
        return (logmel - mean) / std

    def frames_out(self, frames_in: torch.Tensor) -> torch.Tensor:
        """How many output frames `frames_in` feature frames make (the stride-2 convolution)."""
        return (frames_in - 1) // 2 + 1

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) features and their lengths -> (B, T', alphabet + 1) log-probs."""
        x = self.front(feats.transpose(1, 2)).transpose(1, 2)
        out_len = self.frames_out(lengths)
        pad = torch.arange(x.shape[1], device=x.device)[None] >= out_len[:, None]
        x = x + _positions(x.shape[1], x.shape[2]).to(x)
        x = self.encoder(x, src_key_padding_mask=pad)
        return self.head(self.norm(x)).log_softmax(-1)

    @torch.inference_mode()
    def listen(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor | None:
        """(T', alphabet + 1) log-probabilities of (N,) float mono audio at any rate (cut to
        MAX_SECONDS); None when it is too short to hear. Raises ValueError for bad audio.
        Thread-safe once in eval mode (`from_pretrained` returns it so)."""
        wave = resample(checked_mono(audio), sample_rate, ASR_SAMPLE_RATE)
        wave = wave[: int(MAX_SECONDS * ASR_SAMPLE_RATE)]
        if wave.size < self.config.n_fft:
            return None
        feats = self.features(torch.from_numpy(np.ascontiguousarray(wave))[None])
        return self(feats, torch.tensor([feats.shape[1]]))[0]

    @staticmethod
    def letters(logp: torch.Tensor | None) -> tuple[str, float]:
        """The letters of `listen`'s log-probabilities ('' for none) and how sure the ear is of
        them: the mean probability of the letters it wrote, frame by frame (0 when it wrote
        none). espeak voices it never heard score a median of ~0.8; recordings of people
        0.6-0.8 (docs/what-was-tried.md)."""
        if logp is None:
            return "", 0.0
        best, ids = logp.max(-1)
        written = ids != 0
        sure = float(best[written].exp().mean()) if bool(written.any()) else 0.0
        return decode_greedy(ids), sure

    @staticmethod
    @torch.inference_mode()
    def misfit(logp: torch.Tensor, texts: list[torch.Tensor]) -> torch.Tensor:
        """How badly each text (`encode_text` ids) fits `listen`'s log-probabilities: its CTC
        loss per letter (inf where it has more letters than the audio has frames). Known
        questions spoken by voices the ear never heard: 0.2-1.5; any other question fitted to
        those turns, or to recordings of people, above 1.55 (docs/what-was-tried.md)."""
        frames = logp.shape[0]
        lengths = torch.tensor([len(t) for t in texts])
        loss = nn.functional.ctc_loss(
            logp[:, None].expand(frames, len(texts), -1),
            torch.cat(texts),
            torch.full((len(texts),), frames),
            lengths,
            reduction="none",
            zero_infinity=True,  # a text too long for the audio: inf -> 0, refused below
        )
        return torch.where(loss > 0, loss / lengths.clamp(min=1), math.inf)

    def hear(self, audio: np.ndarray, sample_rate: int) -> tuple[str, float]:
        """The letters heard in (N,) float mono audio and how sure the ear is of them
        (`listen`, then `letters`)."""
        return self.letters(self.listen(audio, sample_rate))

    def save_pretrained(
        self, directory: str | Path, storage_dtype: torch.dtype = torch.float32
    ) -> None:
        """Config and weights (`storage_dtype` on disk, e.g. float16 to ship: loaded back
        into float32)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / _CONFIG).write_text(json.dumps(asdict(self.config), indent=1))
        state = {k: v.to(storage_dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(d / _WEIGHTS))

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Ear:
        d = Path(directory)
        try:
            config = EarConfig(**json.loads((d / _CONFIG).read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"unreadable ear config in {d}: {e}") from e
        ear = cls(config)
        try:
            ear.load_state_dict(load_file(str(d / _WEIGHTS)))
        except Exception as e:  # a missing, truncated or mismatched file (safetensors' own errors)
            raise ValueError(f"unreadable ear weights in {d}: {e}") from e
        return ear.eval()
