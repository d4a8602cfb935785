"""The one config of `run_agent.py train`: which stage, on which world, into which folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import torch

from mavid.config import Preset

Stage = Literal["codecs", "conductor", "creator-audio", "creator-joint", "ear"]
STAGES: tuple[str, ...] = get_args(Stage)


@dataclass
class TrainConfig:
    """One training stage. The same config (and world) reproduces the same weights on CPU.

    Stages chain through `init`: codecs -> creator-audio (init = the codecs run's `model/`)
    -> creator-joint (init = the creator-audio run's `model/`, optionally `codecs` = the codecs
    run's `model/`). The conductor stands alone, and so does its ear (`ear`: generated speech
    only, the world is not read). A codecs run given an `init` keeps that
    model's audio tokenizer and trains only the video VAE.
    """

    stage: Stage
    data: Path  # a built world (run_agent.py data; the ear stage reads none)
    out: Path  # run folder: checkpoints/, log.jsonl, loss.png, model/
    steps: int = 1000
    batch_size: int = 8
    lr: float = 3e-4
    seed: int = 0
    threads: int = 2  # torch intra-op threads
    resume: bool = True  # continue from out/checkpoints; False refuses a folder that has some
    # creator stages: the previous stage's model/ directory; codecs: the model whose audio
    # tokenizer to keep; conductor: a trained Conductor to go on from
    init: Path | None = None
    # creator stages: take the codecs (audio tokenizer + video VAE) from this codecs run's
    # model/ instead of from `init` (stage 2 can then run beside the VAE's training: it needs
    # only the audio tokenizer, which the codecs stage fits first and deterministically)
    codecs: Path | None = None
    # codecs stage: a preset name or a Preset (creator stages take the preset of `init`)
    preset: str | Preset = "tiny"
    # creator stages: train under this preset's Creator config (e.g. "tiny": today's), with the
    # init's weights (their shapes must fit); None keeps the init's own config
    creator_preset: str | None = None
    split: str = "train"
    max_samples: int | None = None  # use only the first N samples of the split
    val_samples: int = 32  # held-out "val" samples scored at each checkpoint (0: none)
    warmup_steps: int | None = None  # None: 5 % of steps
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    # creator stages: share of clip j's input code columns hidden from the AR decoder
    # (`mavid.creator.training.l_ar`), so it learns to follow the phone track
    code_dropout: float = 0.0
    # creator stages: share of items trained without their phone track (for phone guidance)
    phone_dropout: float = 0.0
    # creator stages: a pool of this many generated utterances (mavid.train.speech_pairs; 0:
    # none), from which a share `speech_share` of the batches come (audio-only steps)
    speech_utterances: int = 0
    speech_share: float = 0.5
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    stop_after: int | None = None  # end this run at this step (resume later); schedule unchanged
    # conductor stage (issue 7; see mavid.train.stage1.Stage1Config):
    conductor_turns: float = 0.75  # share of each batch from generated visitor turns (0: world)
    conductor_augment: bool = True  # the issue-7 recipe (Stage1Config); False: the original one
    # "domain" / "general": spoken turns written down by PocketSphinx (mavid.conductor.hearing),
    # the Thinker trained on the transcripts and saved with its hearing; "off": it hears audio
    conductor_hearing: str = "off"
    # "words": the user's words read as frozen word vectors (mavid.conductor.word_reading)
    conductor_reading: str = "off"
    # codecs: train the video VAE on random square crops of this many pixels (a multiple of
    # the VAE's 8x; it is convolutional, and 64-px crops train ~7x faster than 128-px frames)
    video_crop: int | None = None
    # creator-joint: previous-clip latents noised to t ~ U(0, history_noise) (0: clean)
    history_noise: float = 0.0
    # creator-joint: L_DIFF's weight on the mouth's latent cells (1: uniform over the frame)
    mouth_weight: float = 1.0
    # creator-joint: keep the AR decoder as init left it (the face learns, the speech stays)
    freeze_audio: bool = False
    # ear: its utterances' vocal tracts scaled by up to this much (mavid.train.ear), and the
    # share of them heard in a room (0, 0: the first ear runs' batches)
    ear_tract: float = 0.0
    ear_reverb: float = 0.0
    ear_more_questions: bool = False  # ear: say the knowledge base's other ways of asking too
    ear_more_voices: bool = False  # ear: every other espeak variant too (none held out)
    ear_crossed_voices: int = 0  # ear: voice variants crossed from the world's training ones
    device: str = "cpu"  # "cuda" trains on a GPU (the same command and steps as on the CPU)
    workers: int = 0  # processes making batches ahead (worth it for the conductor's turns)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; choose one of {list(STAGES)}")
        self.data, self.out = Path(self.data), Path(self.out)
        if self.init is not None:
            self.init = Path(self.init)
        if self.codecs is not None:
            self.codecs = Path(self.codecs)
        for name in ("steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.video_crop is not None and (self.video_crop < 8 or self.video_crop % 8):
            raise ValueError(f"video_crop must be a positive multiple of 8, got {self.video_crop}")
        if self.speech_utterances < 0 or not 0.0 <= self.speech_share <= 1.0:
            raise ValueError(
                f"speech_utterances must be >= 0 and speech_share in [0, 1], got "
                f"{self.speech_utterances}, {self.speech_share}"
            )
        if not 0.0 <= self.phone_dropout < 1.0:
            raise ValueError(f"phone_dropout must be in [0, 1), got {self.phone_dropout}")
        if not 0.0 <= self.history_noise <= 1.0:
            raise ValueError(f"history_noise must be in [0, 1], got {self.history_noise}")
        if self.mouth_weight < 1.0:
            raise ValueError(f"mouth_weight must be >= 1, got {self.mouth_weight}")
        if self.mouth_weight != 1.0 and self.stage != "creator-joint":
            raise ValueError("mouth_weight weights L_DIFF: it is for creator-joint only")
        if self.freeze_audio and (self.stage != "creator-joint" or self.speech_utterances):
            raise ValueError(
                "freeze_audio is for creator-joint without generated speech (which trains only "
                "the AR decoder)"
            )
        if self.conductor_hearing not in ("off", "domain", "general"):
            raise ValueError(
                f"conductor_hearing must be off, domain or general, got {self.conductor_hearing!r}"
            )
        if self.conductor_reading not in ("off", "words"):
            raise ValueError(
                f"conductor_reading must be off or words, got {self.conductor_reading!r}"
            )
        if self.conductor_reading != "off" and self.stage != "conductor":
            raise ValueError("conductor_reading is for the conductor stage only")
        ear_only = (
            self.ear_tract,
            self.ear_reverb,
            self.ear_more_questions,
            self.ear_more_voices,
            self.ear_crossed_voices,
        )
        if any(ear_only) and self.stage != "ear":
            raise ValueError(
                "ear_tract, ear_reverb, ear_more_questions, ear_more_voices and "
                "ear_crossed_voices are for the ear stage only"
            )
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {self.device!r}") from None
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {self.max_samples}")

    @property
    def warmup(self) -> int:
        return self.steps // 20 if self.warmup_steps is None else self.warmup_steps
