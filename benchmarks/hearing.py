"""The Conductor's hearing on spoken turns and recordings of people: who wrote each down, how well.

    .venv/bin/python -m benchmarks.hearing --world data/world-1000 [--split test]
        [--conductor mavid/weights/tiny/conductor] [--recordings DIR ...]

For the world's spoken turns of a split (held-out voices; in the test split held-out questions
too) and for recordings of people (Sphinx's test layout, as `benchmarks/ear.py` reads them):
the word error rate of the hearing's transcripts (what the Thinker reads), how many turns were
written down by each of its parts (`Hearing.heard`: a known question, the ear, the
recognizer) and its median time a turn (and on the turns the ears leave to the recognizer,
which may hear them twice), and PocketSphinx's (the hearing's language model) and Whisper's
word error rates and median time on every turn, each on its own.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import jiwer
import numpy as np
import torch

from benchmarks.ear import recordings
from mavid.asr import normalize_text
from mavid.avatar import EMBEDDED_WEIGHTS
from mavid.conductor.hearing import Hearing, recognizer
from mavid.data.shards import WorldDataset
from mavid.interfaces import UserTurn
from mavid.whisper_asr import WhisperRecognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--conductor", type=Path, default=EMBEDDED_WEIGHTS / "conductor")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--recordings", type=Path, nargs="*", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hearing = Hearing.load(args.conductor)
    if hearing is None:
        raise SystemExit(f"{args.conductor}: the Conductor has no hearing")
    config = hearing.config
    alone = {
        "pocketsphinx": recognizer(replace(config, recognizer="pocketsphinx")),
        "whisper": WhisperRecognizer(beam=config.whisper_beam),
    }

    groups: dict[str, list[tuple[np.ndarray, int, str]]] = {f"{args.split} spoken turns": []}
    for sample in WorldDataset(args.world, args.split):
        if not sample.plan.typed:
            turn = sample.user_turn()
            groups[f"{args.split} spoken turns"].append(
                (turn.audio, turn.audio_sample_rate, sample.question)
            )
    for folder in args.recordings:
        groups[f"people ({folder.name})"] = [(a, sr, w) for _, a, sr, w in recordings(folder)]

    shown = args.conductor.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    print(f"hearing of {shown} (recognizer: {config.recognizer}) on {args.world}")
    for name, items in groups.items():
        if not items:
            print(f"{name}: none found")
            continue
        refs = [normalize_text(said) for _, _, said in items]
        hearing.heard(UserTurn(audio=items[0][0], audio_sample_rate=items[0][1]))  # (warm)
        heard, took = [], []
        for a, sr, _ in items:
            start = time.perf_counter()
            heard.append(hearing.heard(UserTurn(audio=a, audio_sample_rate=sr)))
            took.append(time.perf_counter() - start)
        by = Counter(h.by or "nothing" for h in heard)
        # (the recognizer's turns: those it wrote, and those the ears left that it heard none in)
        left = [t for t, h in zip(took, heard, strict=True) if h.by not in ("known", "ear")]
        line = (
            f"{name:>22}: {len(items):3d}  hearing WER "
            f"{jiwer.wer(refs, [normalize_text(h.words) or '-' for h in heard]):.3f}  by "
            + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
            + f", {1000 * np.median(took):.0f} ms"
            + (f" (the recognizer's turns {1000 * np.median(left):.0f} ms)" if left else "")
        )
        for label, alone_recognizer in alone.items():
            hyps, seconds = [], []
            for a, sr, _ in items:
                start = time.perf_counter()
                hyps.append(normalize_text(alone_recognizer.transcribe(a, sr)) or "-")
                seconds.append(time.perf_counter() - start)
            line += (
                f"  | {label} alone WER {jiwer.wer(refs, hyps):.3f}, "
                f"{1000 * np.median(seconds):.0f} ms"
            )
        print(line)


if __name__ == "__main__":
    main()
