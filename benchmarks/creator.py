"""Creator benchmark: parameters, ms per clip, RTF, flatness over a session, memory, FLOP/s.

    .venv/bin/python benchmarks/creator.py --threads 2              # tiny preset on CPU
    .venv/bin/python benchmarks/creator.py --preset paper --device meta
    .venv/bin/python benchmarks/creator.py --device cuda            # bf16 on a GPU
    python benchmarks/creator.py --preset paper --device cuda --clips 4  # random Higgs/Wan codecs

Timings on a shared machine are noisy: per-clip figures are medians over a small window.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

# OpenMP threads that spin at barriers collapse when the 2 cores are shared (measured: 2.5 s
# instead of 0.64 s per clip under a load of ~6); passive waiting is what a shared box needs.
# Must be set before torch loads; OMP_WAIT_POLICY=ACTIVE in the environment overrides it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mavid.codecs.audio_tokenizer import HiggsAudioTokenizer
from mavid.codecs.video_vae import WanVideoVAE
from mavid.config import PAPER_CREATOR_PARAMS, Preset, get_preset
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator

SPEECH = "the quick brown fox jumps over the lazy dog, and then it rests for a while."
MOTION = "smiles, nods slowly, looks at the camera"


def matmul_peak(device: str, dtype: torch.dtype, n: int, repeats: int = 10) -> float:
    """Best-of FLOP/s of a plain square torch.matmul on this device."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def random_codecs(preset: Preset, device: str, dtype: torch.dtype) -> tuple:
    """Random-weight codecs of the kinds that load from checkpoints (the paper preset's
    higgs-audio v2 tokenizer and Wan 2.2 VAE), at their published shapes: for timing only.
    Needs torchaudio (transformers' higgs module) and diffusers."""
    audio = video = None
    if preset.audio_tokenizer.kind == "higgs_v2":
        from transformers import HiggsAudioV2TokenizerConfig, HiggsAudioV2TokenizerModel

        ratios = list(preset.audio_tokenizer.ratios)  # bosonai/higgs-audio-v2-tokenizer's
        cfg = HiggsAudioV2TokenizerConfig(
            acoustic_model_config=dict(
                downsampling_ratios=ratios,
                upsampling_ratios=ratios,
                hop_length=preset.audio_tokenizer.hop_length,
            ),
            target_bandwidths=[0.5, 1, 1.5, 2],
        )
        audio = HiggsAudioTokenizer(HiggsAudioV2TokenizerModel(cfg).to(device, dtype))
    if preset.video_vae.kind == "wan":
        from diffusers import AutoencoderKLWan

        z = preset.video_vae.z_dim  # Wan-AI/Wan2.2-TI2V-5B-Diffusers vae/config.json's shapes
        vae = AutoencoderKLWan(
            base_dim=160,
            decoder_base_dim=256,
            z_dim=z,
            in_channels=12,
            out_channels=12,
            patch_size=2,
            is_residual=True,
            scale_factor_spatial=preset.video_vae.spatial_compression,
            scale_factor_temporal=preset.video_vae.temporal_compression,
            latents_mean=[0.0] * z,
            latents_std=[1.0] * z,
        )
        video = WanVideoVAE(vae.to(device, dtype))
    return audio, video


def count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def window_ms(times: list[float], i: int, half: int = 2) -> float:
    lo, hi = max(0, i - half), min(len(times), i + half + 1)
    return 1000 * statistics.median(times[lo:hi])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "meta"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", action="store_true", help="print each clip's time (stderr)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)

    if args.device == "meta":
        with torch.device("meta"):
            model = CreatorModel(preset)
        n = model.creator_parameters()
        print(
            f"preset {preset.name}: Creator parameters {n / 1e9:.2f} B "
            f"(paper: {PAPER_CREATOR_PARAMS / 1e9:.1f} B speech + video, "
            f"{100 * (n / PAPER_CREATOR_PARAMS - 1):+.1f} %)"
        )
        print(
            f"  AR audio decoder {count(model.audio) / 1e9:.2f} B, "
            f"DiT video {count(model.video) / 1e9:.2f} B, "
            f"motion text encoder {count(model.motion) / 1e9:.3f} B"
        )
        return

    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    # on a GPU, initialise there: the paper preset's 8 B parameters take minutes on a CPU
    with torch.device(args.device):
        model = CreatorModel.random(preset, args.seed).to(device=args.device, dtype=dtype)
        audio_codec, video_vae = random_codecs(preset, args.device, dtype)
    creator = MavidCreator(model, audio_codec, video_vae, device=args.device, dtype=dtype)
    spec = creator.spec
    if args.device == "cuda":
        weights = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()  # the fp32 init's peak is not the run's
    print(
        f"preset {preset.name} on {args.device} ({dtype}), torch threads "
        f"{torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    )
    print(
        f"parameters: Creator {model.creator_parameters() / 1e6:.2f} M "
        f"(AR audio {count(model.audio) / 1e6:.2f} M, DiT {count(model.video) / 1e6:.2f} M, "
        f"motion enc {count(model.motion) / 1e6:.2f} M), audio codec "
        f"{count(getattr(creator.audio_codec, 'model', creator.audio_codec)) / 1e6:.2f} M, "
        f"video VAE {count(getattr(creator.video_vae, 'model', creator.video_vae)) / 1e6:.2f} M"
    )
    print(
        f"clip: {spec.clip_frames} frames = {spec.clip_frames / spec.fps:.2f} s at "
        f"{spec.width}x{spec.height}, first clip {spec.first_clip_frames} frames; "
        f"sampler steps {preset.creator.sampler_steps}, cfg {preset.creator.cfg_scale}"
    )

    peak = matmul_peak(args.device, dtype, 4096 if args.device == "cuda" else 1024)
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s")

    stream = creator.new_stream(seed=args.seed)
    times, parts = [], []
    for i in range(args.clips):
        frames = spec.first_clip_frames if i == 0 else spec.clip_frames
        clip = stream.next_clip(SPEECH, MOTION, num_frames=frames)
        times.append(clip.gen_seconds)
        parts.append(stream.last_timings)
        if args.verbose:
            parts_ms = ", ".join(f"{k} {1000 * v:.0f}" for k, v in stream.last_timings.items())
            print(f"  clip {i + 1}: {1000 * clip.gen_seconds:.0f} ms ({parts_ms})", file=sys.stderr)
        elif (i + 1) % 50 == 0:
            print(f"  ... {i + 1} clips", file=sys.stderr)
    steady = times[2:] if len(times) > 4 else times[1:]
    steady_s = statistics.median(steady)
    rtf = (spec.clip_frames / spec.fps) / steady_s
    print(f"first clip ({spec.first_clip_frames} frames): {1000 * times[0]:.0f} ms")
    print(
        f"steady state ({spec.clip_frames} frames): median {1000 * steady_s:.0f} ms per clip, "
        f"RTF {rtf:.2f} (media s / wall s)"
    )
    # clip numbers are 1-based; clip 1 is the short first clip, so flatness compares clip 2
    marks = [m for m in (2, 50, 200) if m <= len(times)]
    per = ", ".join(f"clip {m}: {window_ms(times, m - 1):.0f} ms" for m in marks)
    print(f"per clip: clip 1: {1000 * times[0]:.0f} ms (first, short), {per} (median of +-2)")
    if len(marks) > 1:
        first, last = window_ms(times, 1), window_ms(times, marks[-1] - 1)
        print(f"flatness: clip {marks[-1]} vs clip 2 {100 * (last / first - 1):+.1f} %")
    keys = list(parts[-1])
    breakdown = {k: statistics.median(p.get(k, 0.0) for p in parts[2:] or parts) for k in keys}
    print("per part (median ms): " + ", ".join(f"{k} {1000 * v:.0f}" for k, v in breakdown.items()))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")
    if args.device == "cuda":
        print(
            f"CUDA memory: weights {weights / 2**20:.0f} MiB, peak over the clips "
            f"{torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        )

    with FlopCounterMode(display=False) as counter:
        stream.next_clip(SPEECH, MOTION)
    flops = counter.get_total_flops()
    # the box is shared: take the better of two peak measurements, before and after the run
    peak = max(peak, matmul_peak(args.device, dtype, 4096 if args.device == "cuda" else 1024))
    print(f"matmul peak (best of start/end): {peak / 1e9:.1f} GFLOP/s")
    achieved = flops / steady_s
    print(
        f"FLOPs per clip: {flops / 1e9:.2f} GFLOP; achieved {achieved / 1e9:.1f} GFLOP/s = "
        f"{achieved / peak:.2f} of the matmul peak"
    )


if __name__ == "__main__":
    main()
