"""Paper stage 3: the Creator end to end, AR audio + DiT video through the fusion module,
L = L_AR + L_DIFF (`mavid.creator.training.stage3_step`).

Starts from the stage-2 run (`init`). The codecs stay frozen: the world is encoded once into
codes and latents. The flow-matching noise and times of step i come from a generator seeded
by (seed, i), so a resumed run draws what a straight run draws. `history_noise` > 0 noises
the previous clip's latents (`mavid.creator.training.noised_history`). With generated speech
(`speech`, as in stage 2), a share of the steps are audio-only stage-2 steps on it, so the
decoder keeps hearing many texts and voices while the joint steps see the world's few answers.

`mouth_weight` > 1 weights L_DIFF on the latent cells that hold the mouth
(`mavid.data.faces.MOUTH_REGION`): lip-sync lives in a few cells of the frame, which a uniform
mean over the whole face barely rewards. `freeze_audio` keeps the AR decoder as `init` left it
(the DiT, its audio cross-attention and the motion encoder learn; L_AR still trains the video
history that the decoder reads through F_v): more joint steps for the face that cannot cost
the speech, which joint steps on the world's few answers otherwise overfit.
"""

from __future__ import annotations

import torch

from mavid.creator.training import CreatorBatch, stage3_step
from mavid.data.faces import mouth_region
from mavid.train.data import step_rng
from mavid.train.stage2 import CreatorAudioTask


class CreatorJointTask(CreatorAudioTask):
    """Stage 3 as a `TrainTask`."""

    with_latents = True

    def __init__(
        self,
        *args,
        history_noise: float = 0.0,
        mouth_weight: float = 1.0,
        freeze_audio: bool = False,
        **kwargs,
    ) -> None:
        if mouth_weight < 1.0:
            raise ValueError(f"mouth_weight must be >= 1, got {mouth_weight}")
        if freeze_audio and kwargs.get("speech") is not None:
            raise ValueError("generated speech trains only the AR decoder, which is frozen")
        super().__init__(*args, **kwargs)
        self.history_noise = history_noise
        self.region_weight = _mouth_weights(self.model, mouth_weight)
        # the training loop optimizes only parameters that require grad
        self.model.audio.requires_grad_(not freeze_audio)

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
            self.region_weight,
        )


def _mouth_weights(model, mouth_weight: float) -> torch.Tensor | None:
    """(h, w) L_DIFF weights on the preset's latent grid: `mouth_weight` on the mouth's cells,
    1 elsewhere (None when uniform)."""
    if mouth_weight == 1.0:
        return None
    media = model.preset.media
    h, w = media.height // media.spatial_compression, media.width // media.spatial_compression
    weight = torch.ones(h, w)
    weight[mouth_region(h, w)] = mouth_weight
    return weight
