"""The streaming clip API: `MavidCreator` (mavid.interfaces.Creator) and its streams.

A stream keeps only the previous clip (its delayed audio columns and clean video latents, Eq. 5),
so time and memory per clip are flat. One clip: audio first (AR, conditioned on T_speech,
a_{j-1} and F_v of v_{j-1}), then video (flow-matching DiT over [v_{j-1} ∘ v_j], conditioned on
T_motion and F_a of a_j), then both codecs decode.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from mavid.codecs.audio_tokenizer import AudioTokenizer
from mavid.codecs.delay_pattern import unwrap_clip
from mavid.codecs.video_vae import VideoVAE, num_latents
from mavid.config import CreatorConfig
from mavid.creator.audio_decoder import SamplingConfig
from mavid.creator.face import default_face, fit_image
from mavid.creator.model import CreatorModel
from mavid.creator.phones import PhonePlanner
from mavid.creator.sampler import add_noise, euler_sample, guided
from mavid.creator.text import encode_text
from mavid.data.faces import mouth_region
from mavid.interfaces import AVClip, CancelToken, MediaSpec

MAX_RMS = 0.25  # loudest clip the stream gives out (see `_decode_audio`)


def _to_video(frames: np.ndarray, device, dtype) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (1, 3, F, H, W) in [-1, 1]."""
    x = torch.from_numpy(frames).to(device=device, dtype=dtype)
    return (x.permute(3, 0, 1, 2)[None] / 127.5) - 1.0


def anchor_history(prev: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """v_{j-1} (B, C, T, h, w) with every latent cell outside the mouth's moved `strength` of
    the way to the reference latent (B, C, 1, h, w) (`CreatorConfig.history_anchor`)."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"history anchor must be in [0, 1], got {strength}")
    h, w = prev.shape[3:]
    if reference.shape[3:] != (h, w):
        raise ValueError(f"reference latent grid {tuple(reference.shape[3:])} != history's")
    pull = torch.full((h, w), strength, dtype=prev.dtype, device=prev.device)
    rows, cols = mouth_region(h, w)
    pull[rows, cols] = 0.0
    return prev + pull * (reference.to(prev.dtype) - prev)


@dataclass
class ClipHistory:
    """All a stream carries from one clip to the next."""

    audio_cols: torch.Tensor  # (1, K, F + K + 1) delayed, wrapped codes of a_{j-1}
    audio_codes: torch.Tensor  # (K, c) last codes, decoded again as the codec's context
    video_latents: torch.Tensor  # (1, C, T_lat, h, w) clean v_{j-1}
    phones: torch.Tensor | None = None  # (1, F, 2) phone track of a_{j-1}
    # (1, n, c, V) the last codes' probabilities, the context of an expected-speech decode
    audio_probs: torch.Tensor | None = None

    def nbytes(self) -> int:
        ts = (self.audio_cols, self.audio_codes, self.video_latents, self.phones, self.audio_probs)
        return sum(t.numel() * t.element_size() for t in ts if t is not None)


class MavidCreator:
    """The Creator of one loaded model; streams share the model, never mutate it."""

    def __init__(
        self,
        model: CreatorModel,
        audio_codec: AudioTokenizer | None = None,
        video_vae: VideoVAE | None = None,
        sampling: SamplingConfig | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        default_reference: np.ndarray | None = None,
    ) -> None:
        """`default_reference`: the face of streams opened without one (the model's avatar,
        (H, W, 3) uint8); None draws `default_face`."""
        self.model = model.eval()
        self.default_reference = default_reference
        self.spec: MediaSpec = model.preset.media
        self.audio_codec = audio_codec or model.audio_codec
        self.video_vae = video_vae or model.video_vae
        if self.audio_codec is None or self.video_vae is None:
            raise ValueError(
                "this preset's codecs load from checkpoints: pass audio_codec/video_vae"
            )
        if self.spec.audio_token_rate != self.spec.fps:
            raise ValueError("the clip layout needs one audio token frame per video frame")
        cfg = model.cfg
        speech_levels(cfg, self.audio_codec)  # (a bad setting is refused at load)
        self.sampling = sampling or SamplingConfig(cfg.temperature, cfg.top_k, cfg.top_p)
        self.device = torch.device(device)
        self.dtype = dtype
        self._seed_lock = threading.Lock()
        self._next_seed = 0

    def new_stream(
        self, reference_image: np.ndarray | None = None, seed: int | None = None
    ) -> MavidCreatorStream:
        if seed is None:
            with self._seed_lock:
                seed, self._next_seed = self._next_seed, self._next_seed + 1
        return MavidCreatorStream(self, reference_image, seed)


class MavidCreatorStream:
    """An open-ended sequence of clips; used by one thread at a time.

    Clip length is fixed by `num_frames`, so the AR decoder never ends an utterance early and
    `AVClip.final` stays False: the caller knows from the Conductor when the speech ran out.
    """

    def __init__(self, creator: MavidCreator, reference_image: np.ndarray | None, seed: int):
        self.creator = creator
        self.spec = creator.spec
        self.index = 0
        self.history: ClipHistory | None = None
        self.last_cache_bytes = 0  # size of the last clip's AR KV cache (flat over a session)
        self.last_timings: dict[str, float] = {}  # seconds per part of the last finished clip
        self.generator = torch.Generator(device=creator.device).manual_seed(seed)
        self.planner = PhonePlanner(self.spec.fps) if creator.model.cfg.phone_track else None
        h, w = self.spec.height, self.spec.width
        if reference_image is None:
            reference_image = creator.default_reference
        self._reference = (
            fit_image(reference_image, h, w) if reference_image is not None else default_face(h, w)
        )
        with torch.inference_mode():
            video = _to_video(self._reference[None], creator.device, creator.dtype)
            self._reference_latent = creator.video_vae.encode(video)  # (1, C, 1, h, w)

    def reference_frame(self) -> np.ndarray:
        return self._reference.copy()

    @property
    def pending_speech_frames(self) -> int:
        """Frames of speech given in prompts but not yet spoken (phone-track presets): a caller
        whose prompts ran out asks for more clips (with empty speech) until this is 0."""
        return self.planner.pending_frames if self.planner is not None else 0

    def clear_speech(self) -> None:
        """Drop speech still queued (a new answer starts, the old one was cut)."""
        if self.planner is not None:
            self.planner.clear()

    def next_clip(
        self,
        speech: str,
        motion: str,
        cancel: CancelToken | None = None,
        num_frames: int | None = None,
    ) -> AVClip:
        started = time.perf_counter()
        if not isinstance(speech, str) or not isinstance(motion, str):
            raise TypeError("speech and motion directives must be str")
        f = num_frames or self.spec.clip_frames
        t_lat = num_latents(f, self.spec.temporal_compression)
        check = cancel.raise_if_cancelled if cancel is not None else (lambda: None)
        check()
        with torch.inference_mode():
            audio, frames, history, timings = self._make(speech, motion, f, t_lat, check)
        # only a finished clip becomes history (a cancelled one raised above)
        self.history = history
        self.last_timings = timings
        clip = AVClip(
            index=self.index,
            audio=audio,
            sample_rate=self.spec.audio_sample_rate,
            frames=frames,
            fps=self.spec.fps,
            speech=speech,
            motion=motion,
            gen_seconds=time.perf_counter() - started,
        )
        self.index += 1
        return clip

    def _make(self, speech: str, motion: str, f: int, t_lat: int, check):
        c = self.creator
        model, cfg, dev = c.model, c.model.cfg, c.device
        hist = self.history
        timings: dict[str, float] = {}
        mark = time.perf_counter()

        def lap(part: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            timings[part] = timings.get(part, 0.0) + now - mark
            mark = now

        text = torch.tensor([encode_text(speech, cfg.max_text_len)], device=dev)
        phones = None
        if self.planner is not None:
            self.planner.push(speech)
            phones = torch.from_numpy(self.planner.take(f))[None].to(dev)  # (1, F, 2)
        # v_{j-1} and (anchored presets) the reference latent; the first clip may have neither
        prev, prev_t = hist.video_latents if hist is not None else None, None
        ref = self._reference_latent
        if prev is not None and cfg.history_anchor > 0:
            prev = anchor_history(prev, ref, cfg.history_anchor)
        if prev is not None and cfg.history_noise > 0:
            prev_t = torch.full(prev.shape[:1] + prev.shape[2:3], cfg.history_noise, device=dev)
            noise = torch.randn(prev.shape, generator=self.generator, device=dev, dtype=prev.dtype)
            prev = add_noise(prev, noise, prev_t.to(prev.dtype))
        prefix, fv_kv = model.video_history(prev, ref, prev_t)
        lap("video_history")
        stats: dict[str, int] = {}
        levels = speech_levels(cfg, c.audio_codec)  # (None: all)
        cols, sources, probs = model.audio.generate(
            text,
            hist.audio_cols if hist is not None else None,
            f,
            fv_kv,
            c.sampling,
            self.generator,
            check,
            stats,
            phones=phones,
            prev_phones=hist.phones if hist is not None else None,
            phone_guidance=cfg.phone_guidance,
            expected_levels=(levels or cfg.num_codebooks) if cfg.expected_speech else 0,
        )
        self.last_cache_bytes = stats.get("cache_bytes", 0)
        lap("ar_audio")
        codes = unwrap_clip(cols[0])  # (K, F)
        audio = self._decode_audio(codes, hist, levels, probs)
        lap("audio_decode")

        audio_ctx = model.audio_context(sources, t_lat)
        text_kv = model.motion_kv([motion], dev)
        null_kv = model.motion_kv([""], dev) if cfg.cfg_scale != 1.0 else text_kv
        velocity = guided(
            lambda x, t: model.video(x, t, prefix, text_kv, audio_ctx),
            lambda x, t: model.video(x, t, prefix, null_kv, audio_ctx),
            cfg.cfg_scale,
        )
        if audio_ctx is not None:
            velocity = guided(
                velocity,
                lambda x, t: model.video(x, t, prefix, text_kv, None),
                cfg.audio_guidance,
            )
        shape = (1, ref.shape[1], t_lat, ref.shape[3], ref.shape[4])
        noise = torch.randn(shape, generator=self.generator, device=dev, dtype=c.dtype)
        fixed = None
        if self.index == 0:  # the reference image replaces the first frame of the first clip
            fixed = torch.full_like(noise, float("nan"))
            fixed[:, :, :1] = ref
        latents = euler_sample(
            velocity, noise, cfg.sampler_steps, cfg.sampler_shift, fixed=fixed, check=check
        )
        lap("dit_steps")
        video = c.video_vae.decode(latents)[0]  # (3, F, H, W)
        frames = ((video.permute(1, 2, 3, 0).float() + 1.0) * 127.5).clamp(0, 255)
        frames = frames.round().to(torch.uint8).cpu().numpy()
        if self.index == 0:
            frames[0] = self._reference
        tail = c.model.preset.audio_tokenizer.context_frames
        tail_probs = probs[:, :, -tail:].clone() if probs is not None else None
        history = ClipHistory(cols, codes[:, -tail:].clone(), latents, phones, tail_probs)
        lap("vae_decode")
        return audio, frames, history, timings

    def _decode_audio(
        self,
        codes: torch.Tensor,
        hist: ClipHistory | None,
        levels: int | None,
        probs: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Decode clip codes (K, F) from their first `levels` codebooks (`speech_levels`; None:
        all), or with `probs` (1, n, F, V) their expected entries (`CreatorConfig.
        expected_speech`), with the previous clip's last frames as context (no click at seams)."""
        codec = self.creator.audio_codec
        if probs is not None:
            ctx = hist.audio_probs if hist is not None and hist.audio_probs is not None else None
            both = probs if ctx is None else torch.cat([ctx, probs], dim=2)
            wave = codec.decode_expected(both)[0]
            n_ctx = both.shape[2] - probs.shape[2]
        else:
            ctx = hist.audio_codes if hist is not None else codes[:, :0]
            both = torch.cat([ctx, codes], dim=1)
            wave = codec.decode(both) if levels is None else codec.decode(both, levels=levels)
            n_ctx = ctx.shape[1]
        hop = wave.shape[-1] // (n_ctx + codes.shape[1])
        wave = wave[n_ctx * hop :].float().cpu().numpy()
        n = self.spec.samples_for_frames(codes.shape[1])
        out = np.zeros(n, dtype=np.float32)
        out[: min(n, wave.shape[0])] = wave[:n]
        # a degenerate decode can be loud broadband noise: cap it at the loudest speech
        # clips of the world (RMS 0.25 ~ -12 dBFS; a saturated decode is ~0.6)
        rms = float(np.sqrt(np.mean(out**2))) if out.size else 0.0
        if rms > MAX_RMS:
            out *= MAX_RMS / rms
        return np.clip(out, -1.0, 1.0)


def speech_levels(cfg: CreatorConfig, codec: AudioTokenizer) -> int | None:
    """How many codebooks the speech is synthesised from (`CreatorConfig.speech_codebooks`;
    None: all); ValueError for a count the codec cannot decode, or for `expected_speech` where
    the codec cannot synthesise expected entries."""
    n = cfg.speech_codebooks
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= codec.num_codebooks:
        raise ValueError(
            f"speech_codebooks must be an integer in [0, {codec.num_codebooks}] (0: all), got {n!r}"
        )
    if not isinstance(cfg.expected_speech, bool):
        raise ValueError(f"expected_speech must be true or false, got {cfg.expected_speech!r}")
    if cfg.expected_speech and not getattr(codec, "expected_levels", False):
        raise ValueError(
            f"expected_speech: {type(codec).__name__} decodes drawn codes only (set false)"
        )
    if n in (0, codec.num_codebooks):
        return None
    if not getattr(codec, "partial_levels", False):
        raise ValueError(
            f"speech_codebooks {n}: {type(codec).__name__} decodes all of its "
            f"{codec.num_codebooks} codebooks only (set 0)"
        )
    return n
