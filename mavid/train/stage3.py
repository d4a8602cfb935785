"""Paper stage 3: the Creator end to end, AR audio + DiT video through the fusion module,
L = L_AR + L_DIFF (`mavid.creator.training.stage3_step`).

Starts from the stage-2 run (`init`). The codecs stay frozen: the world is encoded once into
codes and latents. The flow-matching noise and times of step i come from a generator seeded
by (seed, i), so a resumed run draws what a straight run draws. `history_noise` > 0 noises
the previous clip's latents (`mavid.creator.training.noised_history`). With generated speech
(`speech`, as in stage 2), a share of the steps are audio-only stage-2 steps on it, so the
decoder keeps hearing many texts and voices while the joint steps see the world's few answers.
"""

from __future__ import annotations

import torch

from mavid.creator.training import CreatorBatch, stage3_step
from mavid.train.data import step_rng
from mavid.train.stage2 import CreatorAudioTask


class CreatorJointTask(CreatorAudioTask):
    """Stage 3 as a `TrainTask`."""

    with_latents = True

    def __init__(self, *args, history_noise: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.history_noise = history_noise

    def trainable(self) -> list[torch.nn.Parameter]:
        m = self.model
        return [*m.audio.parameters(), *m.video.parameters(), *m.motion.parameters()]

    def train_step(
        self, batch: CreatorBatch, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        if batch.cur_latents.numel() == 0:  # generated speech: an audio-only (stage-2) step
            out = CreatorAudioTask.train_step(self, batch, optimizer, max_grad_norm, step)
            return {"loss": out["loss"], "l_ar_speech": out["l_ar"], "grad_norm": out["grad_norm"]}
        seed = int(step_rng(self.seed, step, stream=1).integers(2**62))
        generator = torch.Generator().manual_seed(seed)
        return stage3_step(
            self.model,
            batch.to(self.device),
            optimizer,
            max_grad_norm,
            generator,
            self.code_dropout,
            self.history_noise,
            self.phone_dropout,
        )
