"""The Creator's inference settings scored on held-out answers (test; val to choose by):
guidance on the speech, history noise and anchor, phone guidance, the AR temperature, the
codebooks the speech is synthesised from and whether from their expected entries (1) or the
drawn ones (0), each combination on the same answers (the model table's meters and seeds).

    .venv/bin/python benchmarks/creator_settings.py --world data/world-1000 \\
        [--checkpoint DIR] [--split test] [--samples 20] [--long 0] [--audio-guidance 1,2] \\
        [--history-noise 0,0.25] [--history-anchor 0,0.3] [--phone-guidance 2,3] \\
        [--temperature 0.15,0.3] [--speech-codebooks 0,1,2] [--expected-speech 0,1] \\
        [--fusion on,off]

`--long N` scores N long answers (cut to 18 s) instead of short ones. One line per setting:
WER (domain LM), lip-sync offset and confidence, subject consistency (frames, first and last
clips), timbre consistency.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from pathlib import Path

import torch

from mavid.avatar import load_avatar_model
from mavid.eval.model_eval import (
    ModelEvalConfig,
    generate_answer,
    held_out_answers,
    score_samples,
    without_fusion,
)
from mavid.eval.timbre import TimbreMeter
from mavid.eval.wer import Recognizer

_SHOWN = {
    "wer_domain_lm": "WER",
    "lipsync_offset_median": "offset",
    "lipsync_confidence": "sync",
    "subject_consistency_frames": "subject",
    "subject_first_clips": "first",
    "subject_last_clips": "last",
    "timbre_consistency": "timbre",
}


def _values(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


# the settings swept (CreatorConfig fields; temperature is the AR sampler's)
_SETTINGS = (
    "audio_guidance",
    "history_noise",
    "history_anchor",
    "phone_guidance",
    "speech_codebooks",
    "expected_speech",
    "temperature",
)
_WHOLE = {"speech_codebooks"}  # (counts, not amounts)
_SWITCHES = {"expected_speech"}  # (0 off, 1 on)


def _setting(name: str, value: float) -> float | int | bool:
    if name in _SWITCHES:
        if value not in (0, 1):
            raise SystemExit(f"--{name.replace('_', '-')} takes 0 and 1, got {value:g}")
        return bool(value)
    return int(value) if name in _WHOLE else value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, default=Path("data/world-1000"))
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: mavid-tiny")
    ap.add_argument(
        "--split", default="test", choices=("val", "test"), help="val: to choose a setting by"
    )
    ap.add_argument("--samples", type=int, default=20, help="short answers")
    ap.add_argument("--long", type=int, default=0, help="long answers instead (18 s)")
    for name in _SETTINGS:
        flag = "--" + name.replace("_", "-")
        ap.add_argument(flag, type=_values, default=None, help="values; default: the model's")
    ap.add_argument("--fusion", default="on", help="on, off, or on,off (removed at inference)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModelEvalConfig(
        args.world, split=args.split, max_samples=args.samples, long_samples=args.long
    )
    short, long = held_out_answers(cfg)
    samples = long if args.long else short
    creator = load_avatar_model(args.checkpoint).creator
    base, sampling = creator.model.preset, creator.sampling
    asr, timbre = {"domain": Recognizer("domain")}, TimbreMeter()
    kind = f"{len(samples)} {'long' if args.long else 'short'} answers"
    print(f"{args.checkpoint or 'mavid-tiny'} on {args.world} ({args.split} split), {kind}")
    values = [getattr(args, n) or [getattr(base.creator, n)] for n in _SETTINGS]
    fusions = args.fusion.split(",")
    if not set(fusions) <= {"on", "off"}:
        ap.error(f"--fusion takes on, off or on,off, got {args.fusion!r}")
    for fusion, *combo in itertools.product(fusions, *values):
        setting = {n: _setting(n, v) for n, v in zip(_SETTINGS, combo, strict=True)}
        temperature = setting.pop("temperature")
        creator.model.preset = base.replace_creator(**setting)
        creator.sampling = dataclasses.replace(sampling, temperature=temperature)
        made_by = creator if fusion == "on" else without_fusion(creator)
        t0 = time.perf_counter()
        made = [generate_answer(made_by, s, i) for i, s in enumerate(samples)]
        row = score_samples(made, asr, timbre)
        shown = "  ".join(f"{name} {row[key]:.3f}" for key, name in _SHOWN.items())
        pairs = zip(_SETTINGS, combo, strict=True)
        named = ", ".join(f"{n.replace('_', ' ')} {v:g}" for n, v in pairs)
        print(f"fusion {fusion}, {named}: {shown}  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
