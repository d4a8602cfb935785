"""Conductor accuracy on every turn of a world split, by kind of turn.

    .venv/bin/python benchmarks/conductor_accuracy.py --world data/world-1000 \\
        [--conductor mavid/weights/tiny/conductor] [--split test]

Greedy decoding. Prints intent accuracy and directive-format validity for spoken turns, typed
turns, and the typed turns again without their camera frames (as a text-only client sends
them). `run_agent.py eval` scores only the answers it also renders; this scores them all.
`--typed-forms N` also types every intent's held-out question and its first training
question N ways each (lower case, dropped letters, as the world's typed turns), camera off:
34 held-out questions rather than the world's 21 typed test turns.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mavid.avatar import EMBEDDED_WEIGHTS
from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.data.dialogue import typed_form
from mavid.data.domain import INTENTS
from mavid.data.shards import WorldDataset
from mavid.eval.conductor import run_conductor, score_conductor
from mavid.interfaces import UserTurn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", type=Path, required=True)
    ap.add_argument("--conductor", type=Path, default=EMBEDDED_WEIGHTS / "conductor")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--typed-forms", type=int, default=0, help="see above (0: off)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    conductor = ThinkerConductor.from_pretrained(args.conductor, ConductorConfig(do_sample=False))
    # (directive, intent, prop) per kind of turn
    groups: dict[str, list[tuple[str, str, str]]] = {
        "spoken": [],
        "typed": [],
        "typed, camera off": [],
    }  # (the typed forms' groups, when asked, are added after these)
    rng = np.random.default_rng(0)
    for intent in INTENTS if args.typed_forms else ():
        for kind, question in (
            ("held-out questions", intent.paraphrases[-1]),
            ("training questions", intent.paraphrases[0]),
        ):
            for _ in range(args.typed_forms):
                turn = UserTurn(text=typed_form(question, rng))
                groups.setdefault(kind, []).append(
                    (run_conductor(conductor, turn), intent.name, "none")
                )
    for sample in tqdm(WorldDataset(args.world, args.split), desc="turns"):
        turn = sample.user_turn()
        kind = "typed" if sample.plan.typed else "spoken"
        groups[kind].append((run_conductor(conductor, turn), sample.intent, sample.plan.prop))
        if sample.plan.typed:
            blind = UserTurn(text=turn.text)
            # with no frames, a visual intent's right answer is the nothing-shown one
            groups["typed, camera off"].append(
                (run_conductor(conductor, blind), sample.intent, "none")
            )
    shown = args.conductor.resolve()
    if shown.is_relative_to(Path.cwd()):
        shown = shown.relative_to(Path.cwd())
    print(f"Conductor {shown} on {args.world} ({args.split} split), greedy")
    for kind, rows in groups.items():
        if not rows:
            continue
        directives, intents, props = zip(*rows, strict=True)
        score = score_conductor(list(directives), list(intents), list(props))
        print(
            f"{kind:>18}: {len(rows):4d} turns  intent {100 * score.intent_accuracy:5.1f} %  "
            f"answer {100 * score.answer_accuracy:5.1f} %  "
            f"format valid {100 * score.format_validity:5.1f} %"
        )


if __name__ == "__main__":
    main()
