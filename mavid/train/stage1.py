"""Paper stage 1: the Conductor (tiny Thinker) learns to write directives from the world's turns.

The world's data is already mixed as the paper asks: plain QA answers (empty motion,
"speech <m_bos> <m_eos>") beside full speech + motion directives; turns come typed (text) or
spoken (audio), always with the visitor's camera frames. Loss: `mavid.conductor.stage1_loss`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase

from mavid.conductor.stage1 import collate, stage1_loss
from mavid.conductor.thinker import ThinkerConductor, TinyThinkerShape
from mavid.conductor.tokenizer import build_tiny_tokenizer
from mavid.data.dialogue import DialogueSample
from mavid.data.domain import domain_corpus
from mavid.interfaces import UserTurn
from mavid.train.data import nonempty, pick, step_rng, user_turn
from mavid.train.loop import optimizer_step

Example = tuple[UserTurn, str, str]  # (turn, speech directive, motion directive)


def examples_of(samples: Iterable[DialogueSample]) -> list[Example]:
    """(turn, speech, motion) of each sample: the Conductor's input and target (Eq. 3)."""
    return nonempty(
        ((user_turn(s), s.answer.speech, s.answer.motion) for s in samples), "conductor examples"
    )


def tokenizer_for(out: Path) -> PreTrainedTokenizerBase:
    """The domain tokenizer, built once per run and kept in `out/tokenizer` so a resumed run
    embeds tokens exactly as the checkpointed one did."""
    path = Path(out) / "tokenizer"
    if (path / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer = build_tiny_tokenizer(domain_corpus)
    tokenizer.save_pretrained(path)
    return tokenizer


class ConductorTask:
    """Stage 1 as a `TrainTask`: batches of collated turns, next-token CE on directives."""

    def __init__(
        self,
        examples: Sequence[Example],
        batch_size: int,
        seed: int,
        tokenizer: PreTrainedTokenizerBase | None = None,
        shape: TinyThinkerShape | None = None,
        val_examples: Sequence[Example] = (),
    ) -> None:
        self.examples = nonempty(examples, "conductor examples")
        self.val_examples = list(val_examples)
        self.batch_size, self.seed = batch_size, seed
        self.conductor = ThinkerConductor.tiny(
            seed=seed,
            tokenizer=tokenizer or build_tiny_tokenizer(domain_corpus),
            shape=shape or TinyThinkerShape(),
        )
        self.model = self.conductor.model

    def trainable(self) -> list[torch.nn.Parameter]:
        return list(self.model.parameters())

    def batch(self, step: int) -> BatchFeature:
        idx = pick(step_rng(self.seed, step), len(self.examples), self.batch_size)
        return collate([self.examples[i] for i in idx], self.conductor.encoder)

    def train_step(
        self, batch: BatchFeature, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        self.model.train()
        loss = stage1_loss(self.model, batch)
        norm = optimizer_step(optimizer, loss, self.model.parameters(), max_grad_norm)
        return {"loss": float(loss.detach()), "grad_norm": norm}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean directive cross-entropy on the held-out examples (other voices, paraphrases)."""
        if not self.val_examples:
            return {}
        self.model.eval()
        total, n = 0.0, len(self.val_examples)
        for i in range(0, n, self.batch_size):
            chunk = self.val_examples[i : i + self.batch_size]
            batch = collate(chunk, self.conductor.encoder)
            total += float(stage1_loss(self.model, batch)) * len(chunk)
        self.model.train()
        return {"val_loss": total / n}

    def save(self, path: Path) -> Path:
        """The trained Conductor as a `ThinkerConductor.from_pretrained` directory."""
        self.model.eval()
        self.conductor.save_pretrained(path)
        return Path(path)
