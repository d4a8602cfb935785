"""Quick checks of a stage's result during training (the full table is `run_agent.py eval`).

`conductor_score`: a trained Conductor's intent accuracy and directive validity on a split of
the world, with greedy decoding, through `mavid.eval.conductor`; `conductor_report` adds the
typed / spoken breakdown (issue 7's goal is on held-out voices and paraphrases):

    python -m mavid.train.evaluate runs/conductor-issue7/model data/world-1000 --split test
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
from mavid.eval.conductor import ConductorScore, run_conductor, score_conductor
from mavid.train.data import iter_samples, user_turn


def conductor_score(
    model_dir: str | Path,
    data: str | Path,
    split: str = "test",
    limit: int | None = None,
    max_new_tokens: int = 160,
    progress: bool = True,
) -> tuple[ConductorScore, list[str]]:
    """Score the Conductor in `model_dir` on `split`; returns the score and its directives."""
    report, predictions = conductor_report(model_dir, data, split, limit, max_new_tokens, progress)
    return report["all"], predictions


def conductor_report(
    model_dir: str | Path,
    data: str | Path,
    split: str = "test",
    limit: int | None = None,
    max_new_tokens: int = 160,
    progress: bool = True,
) -> tuple[dict[str, ConductorScore], list[str]]:
    """Scores of all turns and of the typed / spoken ones ("all", "typed", "spoken"; a kind
    with no turns is left out), and the directives in sample order."""
    conductor = ThinkerConductor.from_pretrained(
        model_dir, ConductorConfig(max_new_tokens=max_new_tokens, do_sample=False)
    )
    predictions, intents, props, motions, typed = [], [], [], [], []
    for sample in tqdm(
        iter_samples(Path(data), split, limit), desc=f"conductor {split}", disable=not progress
    ):
        predictions.append(run_conductor(conductor, user_turn(sample)))
        intents.append(sample.plan.intent)
        props.append(sample.plan.prop)
        motions.append(sample.answer.motion)
        typed.append(sample.plan.typed)
    report = {"all": score_conductor(predictions, intents, props, motions)}
    for kind, want in (("typed", True), ("spoken", False)):
        idx = [i for i, t in enumerate(typed) if t == want]
        if idx:
            report[kind] = score_conductor(
                *([xs[i] for i in idx] for xs in (predictions, intents, props, motions))
            )
    return report, predictions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Score a trained Conductor on a world's split.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report, _ = conductor_report(args.model_dir, args.data, args.split, args.limit)
    print(json.dumps({k: asdict(v) for k, v in report.items()}, indent=1))


if __name__ == "__main__":
    main()
