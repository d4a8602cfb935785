"""Quick checks of a stage's result during training (the full table is `run_agent.py eval`).

`conductor_score`: a trained Conductor's intent accuracy and directive validity on a split of
the world, with greedy decoding, through `mavid.eval.conductor`.
"""

from __future__ import annotations

from pathlib import Path

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
    conductor = ThinkerConductor.from_pretrained(
        model_dir, ConductorConfig(max_new_tokens=max_new_tokens, do_sample=False)
    )
    predictions, intents, props, motions = [], [], [], []
    for sample in tqdm(
        iter_samples(Path(data), split, limit), desc=f"conductor {split}", disable=not progress
    ):
        predictions.append(run_conductor(conductor, user_turn(sample)))
        intents.append(sample.plan.intent)
        props.append(sample.plan.prop)
        motions.append(sample.answer.motion)
    return score_conductor(predictions, intents, props, motions), predictions
