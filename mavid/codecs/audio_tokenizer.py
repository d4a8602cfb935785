"""Multi-codebook audio tokenizers behind one interface.

- `HiggsAudioTokenizer`: transformers' `HiggsAudioV2TokenizerModel` (the paper's tokenizer), loaded
  from a local directory only.
- `MelRVQCodec` (mel_codec.py): the tiny preset's codec (log-mel + k-means RVQ + Griffin-Lim).
- `RVQAudioCodec`: a learned waveform codec (strided-conv encoder, residual VQ with 8 x 1024
  codebooks at 25 Hz, transposed-conv decoder).

Why the tiny preset does not use a small `HiggsAudioV2TokenizerModel` config: the transformers
module imports `torchaudio` at load time (it resamples to 16 kHz for its HuBERT semantic branch;
the HuBERT itself builds offline from its sub-config) and refuses to build without it, and
torchaudio has no release for torch 2.13 (PyPI's newest is 2.11, checked 2026-11). Our codec
also decodes a 1-s clip in a few ms on 2 cores, which the Creator's real-time budget needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from mavid.codecs.framing import trim_to_frames
from mavid.codecs.mel_codec import MelRVQCodec, check_levels, check_probs
from mavid.config import AudioTokenizerConfig


@runtime_checkable
class AudioTokenizer(Protocol):
    sample_rate: int
    frame_rate: int
    num_codebooks: int
    codebook_size: int

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """(N,) or (B, N) float waveform -> (K, T) or (B, K, T) int64 codes, T = N // hop."""
        ...

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(K, T) or (B, K, T) codes -> (T * hop,) or (B, T * hop) float waveform. A codec whose
        `partial_levels` is true also takes `levels=n`: the first n codebooks only. One whose
        `expected_levels` is true also has `decode_expected(probs)`: (n, T, V) or (B, n, T, V)
        probabilities of the first n codebooks' codes -> waveform from the expected entries."""
        ...


def _batched(x: torch.Tensor, dims: int) -> tuple[torch.Tensor, bool]:
    return (x.unsqueeze(0), True) if x.dim() == dims else (x, False)


class _ResConv(nn.Module):
    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.elu(x))


class RVQAudioCodec(nn.Module):
    """Strided-conv autoencoder with residual vector quantisation (K codebooks of V codes)."""

    def __init__(self, config: AudioTokenizerConfig) -> None:
        super().__init__()
        if len(config.channels) != len(config.ratios):
            raise ValueError("AudioTokenizerConfig.channels needs one width per ratio")
        self.config = config
        self.sample_rate = config.sample_rate
        self.frame_rate = config.frame_rate
        self.hop_length = config.hop_length
        self.num_codebooks = config.num_codebooks
        self.codebook_size = config.codebook_size
        widths = [config.channels[0], *config.channels]
        enc: list[nn.Module] = [nn.Conv1d(1, widths[0], 7, padding=3)]
        for i, r in enumerate(config.ratios):
            # kernel == stride: exactly N / r output steps, no padding arithmetic
            enc += [_ResConv(widths[i], 3), nn.ELU(), nn.Conv1d(widths[i], widths[i + 1], r, r)]
        enc += [nn.ELU(), nn.Conv1d(widths[-1], config.latent_dim, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv1d(config.latent_dim, widths[-1], 3, padding=1)]
        for i, r in reversed(list(enumerate(config.ratios))):
            dec += [nn.ELU(), nn.ConvTranspose1d(widths[i + 1], widths[i], r, r)]
            dec += [_ResConv(widths[i], 7)]
        dec += [nn.ELU(), nn.Conv1d(widths[0], 1, 7, padding=3), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)
        k, v, d = config.num_codebooks, config.codebook_size, config.codebook_dim
        self.in_proj = nn.ModuleList(nn.Linear(config.latent_dim, d) for _ in range(k))
        self.out_proj = nn.ModuleList(nn.Linear(d, config.latent_dim) for _ in range(k))
        self.codebooks = nn.Parameter(torch.randn(k, v, d))

    def _quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, T, D) -> codes (B, K, T), quantised z (straight-through), VQ loss."""
        residual = z
        quantized = torch.zeros_like(z)
        codes, vq_loss = [], z.new_zeros(())
        for k in range(self.num_codebooks):
            e = self.in_proj[k](residual)  # (B, T, d)
            book = self.codebooks[k]  # (V, d)
            idx = torch.cdist(e, book.unsqueeze(0).expand(e.shape[0], -1, -1)).argmin(-1)
            q = book[idx]  # (B, T, d)
            vq_loss = vq_loss + F.mse_loss(q, e.detach()) + 0.25 * F.mse_loss(e, q.detach())
            q = e + (q - e).detach()
            out = self.out_proj[k](q)
            quantized = quantized + out
            residual = residual - out
            codes.append(idx)
        return torch.stack(codes, 1), quantized, vq_loss

    # `decode(codes, levels=n)` decodes the first n codebooks' sum (residual VQ)
    partial_levels = True

    def _lookup(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """codes (B, K, T) -> quantised latent (B, D, T), from the first `levels` codebooks."""
        n = self.num_codebooks if levels is None else levels
        return self._latent([self.codebooks[k][codes[:, k]] for k in range(n)])

    def _latent(self, entries: list[torch.Tensor]) -> torch.Tensor:
        """The first n codebooks' (B, T, d) entries -> their latent (B, D, T)."""
        z = sum(self.out_proj[k](e) for k, e in enumerate(entries))
        return z.transpose(1, 2)

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        wave, single = _batched(wave, 1)
        z = self.encoder(trim_to_frames(wave, self.hop_length).unsqueeze(1)).transpose(
            1, 2
        )  # (B, T, D)
        codes = self._quantize(z)[0]
        return codes[0] if single else codes

    def decode(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        codes, single = _batched(codes, 2)
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"expected {self.num_codebooks} codebooks, got {codes.shape[1]}")
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        check_levels(levels, self.num_codebooks)
        wave = self.decoder(self._lookup(codes, levels)).squeeze(1)  # (B, T * hop)
        return wave[0] if single else wave

    # `decode_expected(probs)` decodes each frame's expected latent under code probabilities
    expected_levels = True

    def decode_expected(self, probs: torch.Tensor) -> torch.Tensor:
        """(n, T, V) or (B, n, T, V) code probabilities of the first n codebooks -> waveform
        decoded from each frame's expected latent (out_proj is linear, so the expectation of
        the codebook entries passes through it)."""
        single = probs.dim() == 3
        probs = probs[None] if single else probs
        check_probs(probs, self.num_codebooks, self.codebook_size)
        book = self.codebooks.dtype
        entries = [probs[:, k].to(book) @ self.codebooks[k] for k in range(probs.shape[1])]
        wave = self.decoder(self._latent(entries)).squeeze(1)
        return wave[0] if single else wave

    def reconstruction_loss(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on (B, N) audio: L1 + multi-resolution STFT magnitude + VQ losses."""
        wave = trim_to_frames(wave, self.hop_length)
        z = self.encoder(wave.unsqueeze(1)).transpose(1, 2)
        _, quantized, vq = self._quantize(z)
        recon = self.decoder(quantized.transpose(1, 2)).squeeze(1)
        l1 = F.l1_loss(recon, wave)
        spec = recon.new_zeros(())
        for n_fft in (256, 1024):
            window = torch.hann_window(n_fft, device=wave.device)
            a = torch.stft(recon, n_fft, n_fft // 4, window=window, return_complex=True).abs()
            b = torch.stft(wave, n_fft, n_fft // 4, window=window, return_complex=True).abs()
            spec = spec + F.l1_loss(torch.log1p(a), torch.log1p(b))
        total = l1 + spec + vq
        return {"loss": total, "l1": l1, "stft": spec, "vq": vq}


class HiggsAudioTokenizer:
    """transformers' higgs-audio v2 tokenizer from a local checkpoint directory."""

    def __init__(self, model: nn.Module) -> None:
        cfg = model.config
        self.model = model.eval()
        self.sample_rate = int(cfg.sample_rate)
        # the acoustic hop sets the token rate (downsample_factor is the semantic branch's), and
        # the top target bandwidth sets how many of the DAC's quantizers encode() uses
        self.frame_rate = int(cfg.frame_rate)
        self.num_codebooks = int(cfg.num_quantizers)
        self.codebook_size = int(cfg.codebook_size)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> HiggsAudioTokenizer:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no higgs-audio v2 tokenizer checkpoint at {path}")
        try:
            from transformers import HiggsAudioV2TokenizerModel

            model = HiggsAudioV2TokenizerModel.from_pretrained(path, local_files_only=True)
        except ImportError as exc:
            raise ImportError(
                "HiggsAudioV2TokenizerModel needs torchaudio (transformers imports it for "
                f"resampling); install a torchaudio matching torch {torch.__version__}"
            ) from exc
        return cls(model.to(device))

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        wave, single = _batched(wave, 1)
        codes = self.model.encode(wave.unsqueeze(1)).audio_codes  # (B, K, T)
        return codes[0] if single else codes

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        codes, single = _batched(codes, 2)
        wave = self.model.decode(codes).audio_values.squeeze(1)  # (B, N)
        return wave[0] if single else wave


def build_audio_tokenizer(config: AudioTokenizerConfig) -> RVQAudioCodec | MelRVQCodec:
    """The trainable codec of a preset (the higgs kind loads only from a checkpoint)."""
    if config.kind == "mel_rvq":
        return MelRVQCodec(config)
    if config.kind != "rvq_conv":
        raise ValueError(
            f"audio tokenizer kind {config.kind!r} loads from a checkpoint: "
            "HiggsAudioTokenizer.from_pretrained(local_dir)"
        )
    return RVQAudioCodec(config)
