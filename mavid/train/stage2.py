"""Paper stage 2: the Creator's AR audio decoder alone, cross-entropy over the delayed
multi-codebook codes of each clip, conditioned on T_speech and the previous clip's audio.

Starts from the codecs run (`init`), whose trained codecs encode the world once up front;
only `model.audio` trains (`mavid.creator.training.stage2_step`). With `speech` (a
`SpeechConfig`), a share `speech_share` of the batches come from a pool of generated
utterances (`mavid.train.speech_pairs`) instead of the world's answers.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from mavid.creator.model import CreatorModel
from mavid.creator.training import CreatorBatch, stage2_step
from mavid.data.dialogue import DialogueSample
from mavid.train.clips import ClipPair, ShapeKey, encode_clip_pairs, pick_batch
from mavid.train.data import step_rng
from mavid.train.speech_pairs import SpeechConfig, speech_pairs


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
        speech: SpeechConfig | None = None,
        speech_share: float = 0.5,
    ) -> None:
        """`device`: where the world is encoded (the training loop moves the model itself)."""
        if not 0.0 <= speech_share <= 1.0:
            raise ValueError(f"speech_share must be in [0, 1], got {speech_share}")
        self.model = model
        self.batch_size, self.seed = batch_size, seed
        self.code_dropout, self.phone_dropout = code_dropout, phone_dropout
        self.groups: dict[ShapeKey, list[ClipPair]] = encode_clip_pairs(
            samples, model, self.with_latents, device
        )
        self.speech_groups: dict[ShapeKey, list[ClipPair]] = (
            speech_pairs(model, speech, seed, device) if speech is not None else {}
        )
        self.speech_share = speech_share

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def num_pairs(self) -> int:
        return sum(len(v) for v in self.groups.values())

    def trainable(self) -> list[torch.nn.Parameter]:
        return list(self.model.audio.parameters())

    def batch(self, step: int) -> CreatorBatch:
        rng = step_rng(self.seed, step)
        speech = bool(self.speech_groups) and rng.random() < self.speech_share
        return pick_batch(self.speech_groups if speech else self.groups, rng, self.batch_size)

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
