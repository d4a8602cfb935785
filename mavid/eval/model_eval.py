"""The model table: the meters of the reference row run on what a trained model makes.

`eval_model(ModelEvalConfig)` scores, on the same held-out answers of the world's test split
(voices, identities and paraphrases never trained on):

- ground truth: the reference row;
- audio tokenizer: the answer's speech through encode -> decode (frames untouched);
- video VAE: each clip's frames through encode -> decode (audio untouched);
- mavid-tiny: the Creator speaking each clip's words with its motions (the world's directives,
  cut into the world's clips), from the answer's first frame as the reference image, streamed
  clip after clip as in a call; intent columns: the Conductor on the visitors' turns;
- mavid-tiny, fusion off: the same weights with the fusion module's cross-attentions removed
  at inference (Eq. 6/7 dropped; an ablation of the trained model, not a model trained without
  fusion).

Then the same rows on long answers: the world's long answers (history, museum rules, tour plan)
cut to `long_seconds`, with the first and last three clips' timbre and subject similarity, to
show whether quality stays flat over an 18-s answer.

Writes `<out>/eval.json`, `<out>/eval.md` and `<out>/contact_sheet_generated.png`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mavid.avatar import EMBEDDED_WEIGHTS, load_avatar_model
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator
from mavid.data.dialogue import ClipTarget, DialogueSample
from mavid.data.shards import WorldDataset
from mavid.eval.conductor import run_conductor
from mavid.eval.report import (
    _COLUMNS,
    FLATNESS_COLUMNS,
    _json_value,
    _row,
    contact_sheet,
    markdown_table,
)
from mavid.eval.timbre import TimbreMeter
from mavid.eval.wer import Recognizer
from mavid.interfaces import Conductor
from mavid.render import clip_prompts

__all__ = ["LONG_INTENTS", "ModelEvalConfig", "eval_model", "generate_answer", "without_fusion"]

CONDUCTOR_KEYS = (
    "conductor_intent_accuracy",
    "conductor_answer_accuracy",
    "conductor_format_validity",
)
# The world's answers that run ~30 s; cut to `long_seconds` they make the long-answer rows.
LONG_INTENTS = ("history", "rules", "tour_plan")


@dataclass(frozen=True)
class ModelEvalConfig:
    world: Path
    out: Path = Path("eval")
    checkpoint: Path | None = None  # None: the embedded default (mavid/weights/tiny)
    split: str = "test"
    max_samples: int = 24  # short answers scored
    long_samples: int = 6  # long answers scored (0: none)
    long_seconds: float = 18.0
    seed: int = 0  # the Creator streams' sampling seed
    lms: tuple[str, ...] = ("general", "domain")
    conductor: bool = True  # also run the Conductor on the turns (intent columns)
    threads: int = 2


def without_fusion(creator: MavidCreator) -> MavidCreator:
    """The same weights with the fusion module removed (the paper's "w/o fusion" row)."""
    model = creator.model
    ablated = CreatorModel(model.preset.replace_creator(fusion=False))
    missing, _ = ablated.load_state_dict(model.state_dict(), strict=False)
    if missing:
        raise ValueError(f"weights missing after dropping the fusion module: {missing[:3]}")
    return MavidCreator(
        ablated.to(creator.device).eval(),
        creator.audio_codec,
        creator.video_vae,
        creator.sampling,
        creator.device,
        creator.dtype,
    )


def score_samples(
    samples: list[DialogueSample], asr: dict[str, Recognizer], timbre: TimbreMeter
) -> dict:
    """Every meter of the model table over made answers (the Conductor's columns: the
    samples' own directives)."""
    return _row(samples, asr, timbre, label="made")


def generate_answer(
    creator: MavidCreator, sample: DialogueSample, seed: int, max_clips: int = 60
) -> DialogueSample:
    """The sample with its answer media replaced by the Creator's, made as in a call.

    The answer's speech directive is cut into clip prompts by the agent's `ClipSegmenter`
    (a short first clip, then full ones; each clip takes the world's motion of that window),
    and the stream is asked for more (empty-prompt) clips while it still holds speech the
    prompts queued (`pending_speech_frames`), so no word is cut off.
    """
    stream = creator.new_stream(reference_image=sample.frames[0], seed=seed)
    prompts = clip_prompts(sample.answer.speech, None)
    spec = creator.spec
    frames, audio, clips, start = [], [], [], 0
    while len(clips) < max_clips:
        i = len(clips)
        if i >= len(prompts) and getattr(stream, "pending_speech_frames", 0) <= 0:
            break
        prompt = prompts[i] if i < len(prompts) else ""
        motion = sample.clips[i].motion if i < len(sample.clips) else ""
        n = spec.first_clip_frames if i == 0 else spec.clip_frames
        out = stream.next_clip(prompt, motion, num_frames=n)
        frames.append(out.frames)
        audio.append(out.audio)
        clips.append(ClipTarget(i, start, n, prompt, motion))
        start += n
    wave = np.concatenate(audio).astype(np.float32)
    return dataclasses.replace(
        sample, frames=np.concatenate(frames), audio=wave, speech_audio=wave, clips=tuple(clips)
    )


def truncate(sample: DialogueSample, seconds: float) -> DialogueSample:
    """The first clips of an answer covering at least `seconds` (its text cut to match)."""
    keep, frames = [], 0
    for c in sample.clips:
        keep.append(c)
        frames += c.num_frames
        if frames >= seconds * sample.fps:
            break
    spf = sample.sample_rate // sample.fps
    # the answer's own words (punctuation kept: the Creator's prompts carry it) up to the cut
    words = sum(len(c.speech.split()) for c in keep)
    answer = dataclasses.replace(
        sample.answer, speech=" ".join(sample.answer.speech.split()[:words])
    )
    return dataclasses.replace(
        sample,
        answer=answer,
        frames=sample.frames[:frames],
        audio=sample.audio[: frames * spf],
        speech_audio=sample.speech_audio[: frames * spf],
        clips=tuple(keep),
    )


def audio_roundtrip(creator: MavidCreator, sample: DialogueSample) -> DialogueSample:
    codec = creator.audio_codec
    wave = torch.from_numpy(sample.speech_audio.astype(np.float32))
    out = codec.decode(codec.encode(wave)).float().cpu().numpy()
    speech = np.zeros_like(sample.speech_audio)
    speech[: out.shape[0]] = out[: speech.shape[0]]
    return dataclasses.replace(sample, audio=speech, speech_audio=speech)


@torch.inference_mode()
def video_roundtrip(creator: MavidCreator, sample: DialogueSample) -> DialogueSample:
    vae = creator.video_vae
    frames = []
    for c in sample.clips:
        clip = sample.frames[c.start_frame : c.start_frame + c.num_frames]
        x = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        y = vae.decode(vae.encode(x.to(creator.device)))[0]
        y = ((y.permute(1, 2, 3, 0).float() + 1.0) * 127.5).clamp(0, 255).round()
        frames.append(y.to(torch.uint8).cpu().numpy())
    return dataclasses.replace(sample, frames=np.concatenate(frames))


def held_out_answers(cfg: ModelEvalConfig) -> tuple[list[DialogueSample], list[DialogueSample]]:
    """The split's short answers and its long ones (cut to `long_seconds`), as many as asked."""
    short, long = [], []
    for s in WorldDataset(Path(cfg.world), cfg.split):
        if s.intent in LONG_INTENTS:
            if len(long) < cfg.long_samples:
                long.append(truncate(s, cfg.long_seconds))
        elif len(short) < cfg.max_samples:
            short.append(s)
        if len(short) >= cfg.max_samples and len(long) >= cfg.long_samples:
            break
    if not short:
        raise ValueError(f"split {cfg.split!r} of {cfg.world} has no answers to score")
    return short, long


def directives_for(
    conductor: Conductor | None, samples: list[DialogueSample], seed: int
) -> list[str] | None:
    """The Conductor's directive for each sample's visitor turn (None: no Conductor)."""
    if conductor is None:
        return None
    directives = []
    for i, s in enumerate(tqdm(samples, desc="conductor", leave=False)):
        # a sampling Conductor draws from torch's global RNG: seeded per turn, the table's
        # intent columns are the same on every run
        torch.manual_seed(seed + i)
        directives.append(run_conductor(conductor, s.user_turn()))
    return directives


def _rows(
    samples: list[DialogueSample],
    creators: dict[str, MavidCreator],
    predictions: list[str] | None,
    asr: dict[str, Recognizer],
    timbre: TimbreMeter,
    seed: int,
    roundtrips: bool,
) -> tuple[list[dict], dict[str, list[DialogueSample]]]:
    rows = [_row(samples, asr, timbre)]
    made: dict[str, list[DialogueSample]] = {}
    main = next(iter(creators.values()))
    if roundtrips:
        rt = [audio_roundtrip(main, s) for s in samples]
        rows.append(_row(rt, asr, timbre, label="audio tokenizer (recon.)"))
        rt = [video_roundtrip(main, s) for s in samples]
        rows.append(_row(rt, asr, timbre, label="video VAE (recon.)"))
    for name, creator in creators.items():
        made[name] = [
            generate_answer(creator, s, seed + i)
            for i, s in enumerate(tqdm(samples, desc=name, leave=False))
        ]
        row = _row(made[name], asr, timbre, label=name, predictions=predictions)
        if predictions is None:  # the Conductor was not run: its columns are not this model's
            row |= dict.fromkeys(CONDUCTOR_KEYS, float("nan"))
        rows.append(row)
    return rows, made


def eval_model(cfg: ModelEvalConfig) -> dict:
    """Score the model on the world's held-out answers; write JSON, Markdown, contact sheet."""
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    short, long = held_out_answers(cfg)
    bundle = load_avatar_model(cfg.checkpoint)
    creator = bundle.creator
    if not isinstance(creator, MavidCreator):
        raise TypeError("the model table needs a MAViD Creator")
    creators = {"mavid-tiny": creator, "mavid-tiny, fusion off": without_fusion(creator)}
    asr = {lm: Recognizer(lm) for lm in cfg.lms}
    timbre = TimbreMeter()
    conductor = bundle.conductor if cfg.conductor else None
    predictions = directives_for(conductor, short, cfg.seed)
    rows, made = _rows(short, creators, predictions, asr, timbre, cfg.seed, roundtrips=True)
    long_rows: list[dict] = []
    if long:
        long_preds = directives_for(conductor, long, cfg.seed)
        long_rows, _ = _rows(long, creators, long_preds, asr, timbre, cfg.seed, roundtrips=False)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    contact_sheet(made["mavid-tiny"], out / "contact_sheet_generated.png")
    # the package-relative path: the table reads the same from any checkout
    embedded = EMBEDDED_WEIGHTS.relative_to(EMBEDDED_WEIGHTS.parents[2])
    checkpoint = str(cfg.checkpoint) if cfg.checkpoint else f"embedded ({embedded})"
    result = {
        "world": str(cfg.world),
        "split": cfg.split,
        "checkpoint": checkpoint,
        "rows": [{k: _json_value(v) for k, v in r.items()} for r in rows],
        "long_rows": [{k: _json_value(v) for k, v in r.items()} for r in long_rows],
        "seconds": round(time.perf_counter() - t0, 1),
        "config": {k: str(v) for k, v in dataclasses.asdict(cfg).items()},
    }
    (out / "eval.json").write_text(json.dumps(result, indent=1))
    md = (
        f"Model `{checkpoint}` on `{cfg.world}` ({cfg.split} split: held-out voices, identities "
        f"and paraphrases), {len(short)} answers.\n\n" + markdown_table(rows)
    )
    if long_rows:
        md += (
            f"\nLong answers: {len(long)} answers cut to {cfg.long_seconds:g} s "
            f"({', '.join(LONG_INTENTS)}).\n\n"
            + markdown_table(long_rows, _COLUMNS + FLATNESS_COLUMNS)
        )
    (out / "eval.md").write_text(md)
    return result


def model_eval_main(cfg: ModelEvalConfig) -> int:
    """Entry point for `run_agent.py eval`: prints the table, returns an exit code."""
    result = eval_model(cfg)
    print((Path(cfg.out) / "eval.md").read_text(), end="")
    print(f"wrote {Path(cfg.out) / 'eval.json'} ({result['seconds']} s)")
    return 0
