"""`train_main`: one stage of mavid-tiny's training, from a built world to a model directory.

Run folder (`cfg.out`):
    train_config.json   the config of the run (a resume must match it)
    checkpoints/        resumable training state (mavid.train.loop)
    log.jsonl, loss.png the losses per step and their curves
    model/              the stage's result: a Creator checkpoint (codecs, creator-*), a
                        Thinker directory (conductor) or an ear (ear: `mavid.conductor.ear`),
                        written when the run reaches `steps`
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from mavid.checkpoint import load_checkpoint, load_codec_state, read_preset, save_checkpoint
from mavid.codecs.video_vae import build_video_vae
from mavid.conductor.ear import Ear
from mavid.config import CreatorConfig, VideoVAEConfig, get_preset
from mavid.creator.model import CreatorModel
from mavid.data.shards import WorldDataset
from mavid.train.codecs import CodecsTask, media_tracks
from mavid.train.config import TrainConfig
from mavid.train.data import iter_samples
from mavid.train.ear import EarDataConfig, EarTask
from mavid.train.loop import LoopConfig, LoopResult, latest_checkpoint, train_loop
from mavid.train.speech_pairs import SpeechConfig
from mavid.train.stage1 import ConductorTask, examples_of, stage1_config, tokenizer_for
from mavid.train.stage2 import CreatorAudioTask
from mavid.train.stage3 import CreatorJointTask

log = logging.getLogger(__name__)

MODEL_DIR = "model"
CONFIG_NAME = "train_config.json"
# Settings whose change makes a resumed run another run than the one checkpointed.
_FIXED = ("stage", "data", "batch_size", "lr", "seed", "steps", "init", "codecs", "preset",
          "split", "max_samples", "warmup_steps", "weight_decay", "max_grad_norm",
          "code_dropout", "conductor_turns", "conductor_augment", "conductor_hearing",
          "history_noise", "video_crop", "creator_preset", "phone_dropout", "speech_utterances",
          "speech_share", "mouth_weight", "freeze_audio", "conductor_reading", "ear_tract",
          "ear_reverb", "ear_more_questions", "ear_more_voices",
          "ear_crossed_voices")  # fmt: skip


@dataclass(frozen=True)
class TrainResult:
    stage: str
    step: int
    finished: bool  # reached cfg.steps (then `model` holds the result)
    model: Path | None
    loop: LoopResult


def _check_run_folder(cfg: TrainConfig) -> None:
    """Refuse, before anything is written, a folder that holds another run (or any run,
    without resume)."""
    path = cfg.out / CONFIG_NAME
    resolved = dataclasses.replace(
        cfg,
        data=cfg.data.resolve(),
        init=cfg.init.resolve() if cfg.init else None,
        codecs=cfg.codecs.resolve() if cfg.codecs else None,
    )
    mine = json.loads(json.dumps(dataclasses.asdict(resolved), default=str))
    found = latest_checkpoint(cfg.out)
    if found is not None and not cfg.resume:
        raise FileExistsError(
            f"{cfg.out} already holds checkpoints (latest {found.name}); resume, or train "
            "into another folder"
        )
    if path.exists() and found is not None:
        saved = json.loads(path.read_text())
        # a setting added after the run began was, for that run, its default
        default = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        saved = {k: saved.get(k, default[k]) for k in _FIXED}
        changed = [k for k in _FIXED if saved[k] != mine[k]]
        if changed:
            k = changed[0]
            raise ValueError(
                f"{cfg.out} was trained with {k}={saved.get(k)!r}, now {mine[k]!r}; "
                "use the same settings to resume, or another --out"
            )
    cfg.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(mine, indent=1) + "\n")


def _creator_init(cfg: TrainConfig):
    if cfg.init is None:
        raise ValueError(
            f"stage {cfg.stage!r} starts from the previous stage: pass init=<run>/model "
            "(codecs -> creator-audio -> creator-joint)"
        )
    read_preset(cfg.init)  # a clear CheckpointError before the slower load
    model = load_checkpoint(cfg.init)
    if cfg.creator_preset is not None:
        model = with_creator_config(model, get_preset(cfg.creator_preset).creator)
    if cfg.codecs is not None:
        swap_codecs(model, load_codec_state(cfg.codecs), read_preset(cfg.codecs).video_vae)
    return model


def with_creator_config(model: CreatorModel, creator: CreatorConfig) -> CreatorModel:
    """`model`'s weights under another Creator config (e.g. today's tiny preset, which anchors
    every clip to the reference): the generator's shapes must agree; the codecs stay."""
    preset = dataclasses.replace(model.preset, creator=creator)
    try:
        target = CreatorModel(preset)
        target.load_state_dict(model.state_dict())
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"the init's weights do not fit that Creator config: {exc}") from None
    return target.eval()


def swap_codecs(model, codecs: dict[str, torch.Tensor], vae_config: VideoVAEConfig) -> None:
    """Put a codecs run's codecs into `model`: its video VAE (config, e.g. widths and latent
    scale, and tensors) and its audio tokenizer, which must be the one `model` was trained
    with (codes would change meaning otherwise)."""
    mine = model.audio_codec.state_dict()
    theirs = {
        k.removeprefix("audio_codec."): v for k, v in codecs.items() if k.startswith("audio_codec.")
    }
    if mine.keys() != theirs.keys() or any(not torch.equal(mine[k], theirs[k]) for k in mine):
        raise ValueError(
            "the codecs run's audio tokenizer differs from the one `init` was trained with; "
            "use the codecs run whose tokenizer stage 2 used"
        )
    vae = {k.removeprefix("video_vae."): v for k, v in codecs.items() if k.startswith("video_vae.")}
    model.video_vae = build_video_vae(vae_config)
    model.video_vae.load_state_dict(vae)
    model.preset = dataclasses.replace(model.preset, video_vae=vae_config)


def _val_samples(cfg: TrainConfig) -> list:
    """Up to `cfg.val_samples` of the world's "val" split (none if the world has none)."""
    if cfg.split == "val" or WorldDataset(cfg.data, "val").manifest["splits"]["val"] == 0:
        return []
    return list(iter_samples(cfg.data, "val", cfg.val_samples))


def build_task(cfg: TrainConfig):
    """The stage's TrainTask, with its data read from the world."""
    if cfg.stage == "ear":
        model = Ear.from_pretrained(cfg.init).train() if cfg.init is not None else None
        data = EarDataConfig(
            batch_size=cfg.batch_size,
            tract=cfg.ear_tract,
            reverb_share=cfg.ear_reverb,
            more_questions=cfg.ear_more_questions,
            more_voices=cfg.ear_more_voices,
            crossed_voices=cfg.ear_crossed_voices,
        )
        return EarTask(cfg.seed, data, model=model)
    samples = iter_samples(cfg.data, cfg.split, cfg.max_samples)
    if cfg.stage == "conductor":
        return ConductorTask(
            examples_of(samples),
            cfg.batch_size,
            cfg.seed,
            tokenizer=None if cfg.init is not None else tokenizer_for(cfg.out),
            val_examples=examples_of(_val_samples(cfg)) if cfg.val_samples else (),
            config=stage1_config(
                cfg.conductor_turns,
                cfg.conductor_augment,
                cfg.conductor_hearing,
                cfg.conductor_reading,
            ),
            init=cfg.init,
        )
    if cfg.stage == "codecs":
        audio_from = load_checkpoint(cfg.init) if cfg.init is not None else None
        preset = get_preset(cfg.preset) if isinstance(cfg.preset, str) else cfg.preset
        if audio_from is not None:
            # the init's tokenizer, and the VAE of today's preset (a new one trains)
            preset = dataclasses.replace(audio_from.preset, video_vae=preset.video_vae)
        tracks = media_tracks(samples, preset)
        return CodecsTask(
            tracks,
            preset,
            cfg.batch_size,
            cfg.seed,
            audio_codec_from=audio_from,
            crop=cfg.video_crop,
        )
    model = _creator_init(cfg)
    args = (model, samples, cfg.batch_size, cfg.seed, cfg.code_dropout, cfg.device)
    audio = {
        "phone_dropout": cfg.phone_dropout,
        "speech": SpeechConfig(cfg.speech_utterances) if cfg.speech_utterances else None,
        "speech_share": cfg.speech_share,
    }
    if cfg.stage == "creator-audio":
        return CreatorAudioTask(*args, **audio)
    return CreatorJointTask(
        *args,
        **audio,
        history_noise=cfg.history_noise,
        mouth_weight=cfg.mouth_weight,
        freeze_audio=cfg.freeze_audio,
    )


def train_main(cfg: TrainConfig) -> TrainResult:
    """Train one stage into `cfg.out`; resumes from its checkpoints when `cfg.resume`."""
    if torch.device(cfg.device).type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {cfg.device!r}: no CUDA device on this machine (use cpu)")
        # TF32 matmuls and convolutions: ~3x fp32 on Ampere and later, at 10-bit mantissas
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)  # the caller's process keeps its own setting


def _train(cfg: TrainConfig) -> TrainResult:
    _check_run_folder(cfg)
    task = build_task(cfg)
    loop = LoopConfig(
        out=cfg.out,
        steps=cfg.steps,
        lr=cfg.lr,
        seed=cfg.seed,
        warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        checkpoint_every=cfg.checkpoint_every,
        keep_checkpoints=cfg.keep_checkpoints,
        resume=cfg.resume,
        stop_after=cfg.stop_after,
        progress=cfg.progress,
        desc=cfg.stage,
        device=cfg.device,
        workers=cfg.workers,
    )
    result = train_loop(task, loop)
    model_dir = None
    if result.step >= cfg.steps:
        finish = getattr(task, "finish", None)  # e.g. the codecs' latent scale, once at the end
        if finish is not None:
            finish()
        model_dir = cfg.out / MODEL_DIR
        tmp = cfg.out / (MODEL_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(task, ConductorTask | EarTask):
            task.save(tmp)
        else:
            save_checkpoint(task.model.eval(), tmp)
        shutil.rmtree(model_dir, ignore_errors=True)
        tmp.rename(model_dir)
        log.info("stage %s: %d steps done, model in %s", cfg.stage, result.step, model_dir)
    return TrainResult(cfg.stage, result.step, model_dir is not None, model_dir, result)
