"""The Creator's inference settings scored on test answers: guidance on the speech, history
noise and history anchor, each combination on the same answers (the model table's meters and
seeds).

    .venv/bin/python benchmarks/creator_settings.py --world data/world-1000 \\
        [--checkpoint DIR] [--samples 20] [--long 0] [--audio-guidance 1,2] \\
        [--history-noise 0,0.25] [--history-anchor 0,0.3]

`--long N` scores N long answers (cut to 18 s) instead of short ones. One line per setting:
WER (domain LM), lip-sync offset and confidence, subject consistency (frames, first and last
clips), timbre consistency.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch

from mavid.avatar import load_avatar_model
from mavid.eval.model_eval import ModelEvalConfig, generate_answer, held_out_answers, score_samples
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", type=Path, default=Path("data/world-1000"))
    ap.add_argument("--checkpoint", type=Path, default=None, help="default: mavid-tiny")
    ap.add_argument("--samples", type=int, default=20, help="short answers")
    ap.add_argument("--long", type=int, default=0, help="long answers instead (18 s)")
    ap.add_argument("--audio-guidance", type=_values, default=None, help="default: the model's")
    ap.add_argument("--history-noise", type=_values, default=None, help="default: the model's")
    ap.add_argument("--history-anchor", type=_values, default=None, help="default: the model's")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModelEvalConfig(args.world, max_samples=args.samples, long_samples=args.long)
    short, long = held_out_answers(cfg)
    samples = long if args.long else short
    creator = load_avatar_model(args.checkpoint).creator
    base = creator.model.preset
    asr, timbre = {"domain": Recognizer("domain")}, TimbreMeter()
    kind = f"{len(samples)} {'long' if args.long else 'short'} answers"
    print(f"{args.checkpoint or 'mavid-tiny'} on {args.world} (test split), {kind}")
    noises = args.history_noise or [base.creator.history_noise]
    anchors = args.history_anchor or [base.creator.history_anchor]
    guidances = args.audio_guidance or [base.creator.audio_guidance]
    for g, h, a in itertools.product(guidances, noises, anchors):
        creator.model.preset = base.replace_creator(
            audio_guidance=g, history_noise=h, history_anchor=a
        )
        t0 = time.perf_counter()
        made = [generate_answer(creator, s, i) for i, s in enumerate(samples)]
        row = score_samples(made, asr, timbre)
        shown = "  ".join(f"{name} {row[key]:.3f}" for key, name in _SHOWN.items())
        print(f"audio guidance {g:g}, history noise {h:g}, anchor {a:g}: {shown}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
