"""The tiny preset's audio tokenizer: log-mel frames, residual VQ fitted by k-means, and
Griffin-Lim synthesis.

Why not a learned waveform decoder: on 2 CPU cores a conv codec trained for an hour kept a
multi-resolution STFT loss of ~0.25 and PocketSphinx recognised none of its reconstructions.
A spectral codec has nothing to learn but its codebooks (k-means, minutes), and its
reconstructions of the world's speech are as intelligible as the speech itself (figures in the
README). One token frame (40 ms) is four 10 ms log-mel frames, stacked and normalised; codebook
k quantises the residual left by codebooks 0..k-1, so codebook 0 carries the coarse spectrum
the AR decoder must get right and later ones only refine it.

Griffin-Lim is written here (a few lines) because torchaudio, which has it, has no build for
torch 2.13; it is the "fast" variant with momentum (Perraudin et al., 2013).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from transformers.audio_utils import mel_filter_bank

from mavid.codecs.framing import trim_to_frames
from mavid.config import AudioTokenizerConfig


class MelRVQCodec(nn.Module):
    """Log-mel analysis -> K-stage residual VQ (k-means codebooks) -> Griffin-Lim synthesis."""

    def __init__(self, config: AudioTokenizerConfig) -> None:
        super().__init__()
        if config.hop_length % config.subframes:
            raise ValueError("hop_length must be a multiple of subframes")
        self.config = config
        self.sample_rate = config.sample_rate
        self.frame_rate = config.frame_rate
        self.hop_length = config.hop_length
        self.num_codebooks = config.num_codebooks
        self.codebook_size = config.codebook_size
        self.stft_hop = config.hop_length // config.subframes
        self.n_fft = config.n_fft
        self.dim = config.subframes * config.n_mels
        fb = mel_filter_bank(
            num_frequency_bins=config.n_fft // 2 + 1,
            num_mel_filters=config.n_mels,
            min_frequency=0.0,
            max_frequency=config.sample_rate / 2,
            sampling_rate=config.sample_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        fb = torch.from_numpy(np.asarray(fb, dtype=np.float32))  # (n_freq, n_mels)
        self.register_buffer("mel_basis", fb, persistent=False)
        self.register_buffer("mel_inverse", torch.linalg.pinv(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(config.n_fft), persistent=False)
        k, v = config.num_codebooks, config.codebook_size
        # Fitted by `fit`; saved with the model. Until then: random codes of unit scale.
        self.register_buffer(
            "codebooks", torch.randn(k, v, self.dim) * 0.5 ** torch.arange(k)[:, None, None]
        )
        self.register_buffer("feature_mean", torch.zeros(self.dim))
        self.register_buffer("feature_std", torch.ones(self.dim))

    # ---- analysis
    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) waveform -> (B, T, subframes * n_mels) normalised log-mel, T = N // hop."""
        return (self._logmel(wave) - self.feature_mean.float()) / self.feature_std.float()

    def _logmel(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, N) waveform -> (B, T, subframes * n_mels) log-mel, not normalised."""
        wave = trim_to_frames(wave.float(), self.hop_length)
        t = wave.shape[-1] // self.hop_length
        spec = torch.stft(
            wave, self.n_fft, self.stft_hop, window=self.window.float(), return_complex=True
        ).abs()  # (B, F, 4T + 1)
        mel = torch.log(
            torch.clamp(self.mel_basis.float().T @ spec[..., : t * self.config.subframes], min=1e-5)
        )
        return mel.transpose(1, 2).reshape(wave.shape[0], t, self.dim)

    def _quantize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) features -> (B, K, T) codes."""
        residual, codes = x, []
        for book in self.codebooks.float():
            idx = _nearest(residual, book)
            residual = residual - book[idx]
            codes.append(idx)
        return torch.stack(codes, 1)

    # `decode(codes, levels=n)` synthesises from the first n codebooks (the coarse spectrum)
    partial_levels = True

    def lookup(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """(B, K, T) codes -> (B, T, D) quantised features (float32), from the first `levels`
        codebooks (None: all)."""
        n = self.num_codebooks if levels is None else levels
        return sum(self.codebooks[k].float()[codes[:, k]] for k in range(n))

    # `decode_expected(probs)` synthesises each frame's expected features under code probabilities
    expected_levels = True

    def expected_lookup(self, probs: torch.Tensor) -> torch.Tensor:
        """(B, n, T, V) probabilities of the first n codebooks' codes -> (B, T, D) features:
        per frame, each codebook's entries weighted by their probabilities, summed over the n."""
        check_probs(probs, self.num_codebooks, self.codebook_size)
        books = self.codebooks[: probs.shape[1]].float()
        return torch.einsum("bntv,nvd->btd", probs.float(), books)

    @torch.inference_mode()
    def decode_expected(self, probs: torch.Tensor) -> torch.Tensor:
        """(n, T, V) or (B, n, T, V) code probabilities of the first n codebooks -> waveform
        synthesised from each frame's expected features (the mean of the codebook entries under
        the probabilities, the MMSE spectrum, not one drawn entry's)."""
        single = probs.dim() == 3
        probs = probs[None] if single else probs
        wave = self.griffin_lim(
            self.magnitudes(self.expected_lookup(probs)), probs.shape[2] * self.hop_length
        )
        wave = wave.clamp(-1.0, 1.0)
        return wave[0] if single else wave

    @torch.inference_mode()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        single = wave.dim() == 1
        codes = self._quantize(self.features(wave[None] if single else wave))
        return codes[0] if single else codes

    # ---- synthesis
    def magnitudes(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised features -> (B, n_freq, 4T) linear magnitudes."""
        b, t, _ = feats.shape
        # synthesis runs in float32 whatever the model's dtype (bf16 phases are too coarse)
        feats = feats.float()
        mel = (feats * self.feature_std.float() + self.feature_mean.float()).exp()
        mel = mel.reshape(b, t * self.config.subframes, self.config.n_mels).transpose(1, 2)
        return torch.clamp(self.mel_inverse.float().T @ mel, min=0.0)

    def griffin_lim(self, mag: torch.Tensor, length: int) -> torch.Tensor:
        """(B, n_freq, frames) magnitudes -> (B, length) waveform; deterministic start phase."""
        # the analysis has one more (centred) frame than 4T; repeat the last so lengths agree
        mag = torch.cat([mag, mag[..., -1:]], dim=-1)
        gen = torch.Generator().manual_seed(0)
        # one start phase for every item: an item decodes the same alone or in a batch
        phase = torch.rand((1, *mag.shape[1:]), generator=gen) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(mag), phase.to(mag.device))
        previous = torch.zeros_like(angles)
        momentum = self.config.griffin_lim_momentum
        wave = mag.new_zeros(mag.shape[0], length)
        for _ in range(self.config.griffin_lim_iters):
            wave = torch.istft(
                mag * angles, self.n_fft, self.stft_hop, window=self.window.float(), length=length
            )
            rebuilt = torch.stft(
                wave, self.n_fft, self.stft_hop, window=self.window.float(), return_complex=True
            )
            angles = rebuilt - previous * (momentum / (1 + momentum))
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        return torch.istft(
            mag * angles, self.n_fft, self.stft_hop, window=self.window.float(), length=length
        )

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """(K, T) or (B, K, T) codes -> waveform, synthesised from the first `levels` codebooks
        (None: all)."""
        single = codes.dim() == 2
        codes = codes[None] if single else codes
        if codes.shape[1] != self.num_codebooks:
            raise ValueError(f"expected {self.num_codebooks} codebooks, got {codes.shape[1]}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size})")
        check_levels(levels, self.num_codebooks)
        wave = self.griffin_lim(
            self.magnitudes(self.lookup(codes, levels)), codes.shape[-1] * self.hop_length
        )
        wave = wave.clamp(-1.0, 1.0)
        return wave[0] if single else wave

    # ---- fitting
    @torch.inference_mode()
    def fit(
        self,
        waves: Iterable[np.ndarray],
        seed: int = 0,
        max_vectors: int = 60_000,
        iters: int = 12,
        progress: bool = True,
    ) -> dict[str, float]:
        """Fit the normalisation and the K codebooks (residual k-means) on clean speech.

        Deterministic from `seed` and the waves' order. Returns the relative quantisation
        error after each stage.
        """
        feats = []
        for w in waves:
            if w.shape[0] >= self.hop_length:
                x = self._logmel(torch.from_numpy(np.asarray(w, dtype=np.float32))[None])
                feats.append(x[0])
        if not feats:
            raise ValueError("no audio long enough to fit the codec on")
        data = torch.cat(feats)
        gen = torch.Generator().manual_seed(seed)
        if data.shape[0] > max_vectors:
            data = data[torch.randperm(data.shape[0], generator=gen)[:max_vectors]]
        self.feature_mean.copy_(data.mean(0))
        self.feature_std.copy_(data.std(0).clamp(min=1e-3))
        residual = (data - self.feature_mean) / self.feature_std
        total = float(residual.pow(2).sum())
        errors = {}
        stages = tqdm(range(self.num_codebooks), desc="audio codec k-means", disable=not progress)
        for k in stages:
            book = _kmeans(residual, self.codebook_size, iters, gen)
            self.codebooks[k].copy_(book)
            residual = residual - book[_nearest(residual, book)]
            errors[f"codebook_{k}"] = float(residual.pow(2).sum()) / total
            stages.set_postfix(error=f"{errors[f'codebook_{k}']:.3f}")
        return errors


def _nearest(x: torch.Tensor, book: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """Index of the nearest codebook row for each row of x (..., D), chunked to bound memory."""
    flat = x.reshape(-1, x.shape[-1])
    sq = book.pow(2).sum(-1)
    out = [(sq[None] - 2 * part @ book.T).argmin(-1) for part in flat.split(chunk)]
    return (
        torch.cat(out).view(x.shape[:-1]) if out else flat.new_zeros(x.shape[:-1], dtype=torch.long)
    )


def _kmeans(x: torch.Tensor, k: int, iters: int, gen: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++-lite init (random distinct rows); empty clusters reseeded."""
    n = x.shape[0]
    if n < k:
        x = x[torch.randint(n, (k,), generator=gen)] + 1e-3 * torch.randn(
            k, x.shape[1], generator=gen
        )
        n = k
    centers = x[torch.randperm(n, generator=gen)[:k]].clone()
    for _ in range(iters):
        idx = _nearest(x, centers)
        sums = torch.zeros_like(centers).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k).to(x.dtype)
        empty = counts == 0
        centers = sums / counts.clamp(min=1)[:, None]
        if empty.any():
            centers[empty] = x[torch.randint(n, (int(empty.sum()),), generator=gen)]
    return centers


def check_levels(levels: int | None, num_codebooks: int) -> None:
    """ValueError unless `levels` is None or a whole number of codebooks in [1, num_codebooks]."""
    if levels is None:
        return
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= num_codebooks:
        raise ValueError(f"levels must be an integer in [1, {num_codebooks}], got {levels!r}")


def check_probs(probs: torch.Tensor, num_codebooks: int, codebook_size: int) -> None:
    """ValueError unless `probs` is (B, n, T, V) with 1 <= n <= num_codebooks, V the codebook
    size, and every frame's probabilities finite, non-negative and summing to 1."""
    if probs.dim() != 4:
        shape = tuple(probs.shape)
        raise ValueError(f"expected (B, n, T, V) code probabilities, got shape {shape}")
    if not 1 <= probs.shape[1] <= num_codebooks:
        raise ValueError(f"probabilities for 1 to {num_codebooks} codebooks, got {probs.shape[1]}")
    if probs.shape[3] != codebook_size:
        raise ValueError(f"probabilities over {codebook_size} codes, got {probs.shape[3]}")
    if probs.numel() == 0:
        return
    p = probs.float()
    if not torch.isfinite(p).all() or p.min() < 0:
        raise ValueError("code probabilities must be finite and non-negative")
    if not torch.allclose(p.sum(-1), torch.ones(()), atol=1e-3):
        raise ValueError("each frame's code probabilities must sum to 1")
