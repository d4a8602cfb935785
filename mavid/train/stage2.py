"""Paper stage 2: the Creator's AR audio decoder alone, cross-entropy over the delayed
multi-codebook codes of each clip, conditioned on T_speech and the previous clip's audio.

Starts from the codecs run (`init`), whose trained codecs encode the world once up front;
only `model.audio` trains (`mavid.creator.training.stage2_step`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from mavid.creator.model import CreatorModel
from mavid.creator.training import CreatorBatch, stage2_step
from mavid.data.dialogue import DialogueSample
from mavid.train.clips import ClipPair, ShapeKey, encode_clip_pairs, pick_batch
from mavid.train.data import step_rng


class CreatorAudioTask:
    """Stage 2 as a `TrainTask`."""

    with_latents = False  # no video in stage 2

    def __init__(
        self,
        model: CreatorModel,
        samples: Iterable[DialogueSample],
        batch_size: int,
        seed: int,
        code_dropout: float = 0.0,
        device: torch.device | str = "cpu",
        phone_dropout: float = 0.0,
    ) -> None:
        """`device`: where the world is encoded (the training loop moves the model itself)."""
        self.model = model
        self.batch_size, self.seed = batch_size, seed
        self.code_dropout, self.phone_dropout = code_dropout, phone_dropout
        self.groups: dict[ShapeKey, list[ClipPair]] = encode_clip_pairs(
            samples, model, self.with_latents, device
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_pairs(self) -> int:
        return sum(len(v) for v in self.groups.values())

    def trainable(self) -> list[torch.nn.Parameter]:
        return list(self.model.audio.parameters())

    def batch(self, step: int) -> CreatorBatch:
        return pick_batch(self.groups, step_rng(self.seed, step), self.batch_size)

    def train_step(
        self, batch: CreatorBatch, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        generator = torch.Generator().manual_seed(int(step_rng(self.seed, step, 1).integers(2**62)))
        batch = batch.to(self.device)
        out = stage2_step(
            self.model,
            batch,
            optimizer,
            max_grad_norm,
            self.code_dropout,
            generator,
            self.phone_dropout,
        )
        return {"loss": out["l_ar"], **out}
