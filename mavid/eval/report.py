"""The reference row: every meter run on the world's own ground truth.

`reference_main(EvalConfig)` writes `<out>/reference.json`, `<out>/reference.md` (a Markdown
table of the ground-truth row, plus control rows that show each meter can fail) and
`<out>/contact_sheet.png` (sample frames with their audio waveform). A trained model's row is
held against this one.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from mavid.data.build import WorldConfig, build_world
from mavid.data.dialogue import DialogueSample
from mavid.data.shards import MANIFEST, WorldDataset
from mavid.eval.conductor import score_conductor
from mavid.eval.consistency import dynamic_degree, subject_consistency
from mavid.eval.lipsync import (
    MAX_OFFSET,
    audio_envelope,
    load_mouth_regressor,
    mouth_opening,
    sync_offset,
)
from mavid.eval.timbre import TimbreMeter
from mavid.eval.wer import Recognizer, word_error_rate

__all__ = ["EvalConfig", "clips_of", "eval_reference", "reference_main"]


@dataclass(frozen=True)
class EvalConfig:
    world: Path = Path("world")  # a built world (built here, small, if missing)
    out: Path = Path("eval")
    split: str = "test"
    max_samples: int = 40
    build_samples: int = 60  # size of the world built when `world` has none
    seed: int = 0
    controls: bool = True  # also score broken versions of the ground truth
    lms: tuple[str, ...] = ("general", "domain")  # PocketSphinx language models to report


def clips_of(sample: DialogueSample) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(frames, audio)] per clip of the answer (see `DialogueSample.clip_media`)."""
    return sample.clip_media()


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else float("nan")


def _json_value(v: object) -> object:
    """NaN (a meter that had nothing to measure) becomes null: strict JSON has no NaN."""
    return None if isinstance(v, float) and math.isnan(v) else v


def _row(
    samples: list[DialogueSample],
    asr: dict[str, Recognizer],
    timbre: TimbreMeter,
    variant: str = "ground truth",
    label: str | None = None,
    predictions: list[str] | None = None,
) -> dict:
    """All meters over `samples`; `variant` breaks the ground truth for a control row.

    `label` names the row (default: the variant); `predictions` are the Conductor's directives
    for the samples' turns (default: the ground-truth directives).
    """
    rng = np.random.default_rng(0)
    model = load_mouth_regressor()
    refs, hyps = [], {k: [] for k in asr}
    offsets, confs, sub_f, sub_c, dyn, mot, timb, timb_worst = ([] for _ in range(8))
    timb_ends: list[tuple[float, float]] = []  # (first 3 clips, last 3 clips) per answer
    sub_ends: list[tuple[float, float]] = []
    preds, intents, props, motions = [], [], [], []
    for n, s in enumerate(samples):
        frames, audio, speech = s.frames, s.audio, s.speech_audio
        clips = clips_of(s)
        if variant == "noise audio":  # noise in place of speech
            audio = speech = (0.1 * rng.standard_normal(audio.size)).astype(np.float32)
        elif variant == "shifted audio +5":  # audio 5 frames late
            k = 5 * s.sample_rate // s.fps
            audio = np.concatenate([np.zeros(k, np.float32), audio[:-k]])
        elif variant == "swapped face+voice":  # the second half of the answer from another sample
            other = samples[(n + 1) % len(samples)]
            oc = clips_of(other)
            half = max(1, len(clips) // 2)
            clips = clips[:half] + [oc[min(i, len(oc) - 1)] for i in range(half, len(clips))]
            frames = np.concatenate([c[0] for c in clips])
            audio = np.concatenate([c[1] for c in clips])  # each clip stays in sync with itself
        if variant in ("noise audio", "shifted audio +5"):  # the clips hear the broken audio
            spf = s.sample_rate // s.fps
            clips = [(f, audio[c.start_frame * spf : (c.start_frame + c.num_frames) * spf])
                     for (f, _), c in zip(clips, s.clips, strict=True)]  # fmt: skip
        refs.append(s.answer.speech)
        for k, r in asr.items():
            hyps[k].append(r.transcribe(speech, s.sample_rate))
        # the mouth regressor reads 128-px frames (the tiny preset's): other sizes get no sync
        if frames.shape[0] >= 2 * MAX_OFFSET + 5 and frames.shape[1:3] == (128, 128):
            res = sync_offset(
                mouth_opening(frames, model),
                audio_envelope(audio, s.sample_rate, s.fps, frames.shape[0]),
            )
            offsets.append(res.offset)
            confs.append(res.confidence)
        sc = subject_consistency([c[0] for c in clips])
        sub_f.append(sc.frames)
        sub_c.append(sc.clips if len(clips) > 1 else float("nan"))
        if len(sc.per_clip) >= 6:
            sub_ends.append((float(np.mean(sc.per_clip[1:4])), float(np.mean(sc.per_clip[-3:]))))
        dd = dynamic_degree([c[0] for c in clips])
        dyn.append(dd.degree)
        mot.append(dd.motion)
        try:
            tr = timbre.consistency([c[1] for c in clips], s.sample_rate)
            timb.append(tr.consistency)
            timb_worst.append(tr.worst)
            if tr.clips_used >= 6:
                timb_ends.append(
                    (float(np.mean(tr.per_clip[:3])), float(np.mean(tr.per_clip[-3:])))
                )
        except ValueError:  # fewer than two clips with speech
            pass
        preds.append(s.directive if predictions is None else predictions[n])
        intents.append(s.intent)
        props.append(s.plan.prop)
        motions.append(s.answer.motion)
    cs = score_conductor(preds, intents, props, motions)
    row = {
        "variant": label or variant,
        "samples": len(samples),
        **{
            f"wer_{lm}_lm": word_error_rate(refs, hyps[lm]).wer if lm in hyps else float("nan")
            for lm in ("general", "domain")
        },
        "lipsync_offset_mean_abs": _mean([abs(o) for o in offsets]),
        "lipsync_offset_median": float(np.median(offsets)) if offsets else float("nan"),
        "lipsync_confidence": _mean(confs),
        "subject_consistency_frames": _mean(sub_f),
        "subject_consistency_clips": _mean(sub_c),
        "dynamic_degree": _mean(dyn),
        "motion_magnitude": _mean(mot),
        "timbre_consistency": _mean(timb),
        "timbre_worst_clip": _mean(timb_worst),
        "timbre_answers_scored": len(timb),
        # flatness over long answers: similarity of the first / last three clips
        "timbre_first_clips": _mean([a for a, _ in timb_ends]),
        "timbre_last_clips": _mean([b for _, b in timb_ends]),
        "subject_first_clips": _mean([a for a, _ in sub_ends]),
        "subject_last_clips": _mean([b for _, b in sub_ends]),
        "conductor_intent_accuracy": cs.intent_accuracy,
        "conductor_answer_accuracy": cs.answer_accuracy,
        "conductor_format_validity": cs.format_validity,
    }
    return row


_COLUMNS = [
    ("variant", "row"),
    ("wer_general_lm", "WER (general LM) ↓"),
    ("wer_domain_lm", "WER (domain LM) ↓"),
    ("lipsync_offset_median", "sync offset (frames)"),
    ("lipsync_confidence", "sync conf ↑"),
    ("subject_consistency_frames", "subject cons. frames ↑"),
    ("subject_consistency_clips", "subject cons. clips ↑"),
    ("dynamic_degree", "dynamic degree"),
    ("timbre_consistency", "timbre cons. ↑"),
    ("timbre_worst_clip", "timbre worst clip ↑"),
    ("conductor_intent_accuracy", "intent acc. ↑"),
    ("conductor_format_validity", "format valid ↑"),
]


# extra columns of the long-answer table: is quality flat from the first to the last clip?
FLATNESS_COLUMNS = [
    ("timbre_first_clips", "timbre first 3 clips"),
    ("timbre_last_clips", "timbre last 3 clips"),
    ("subject_first_clips", "subject first 3 clips"),
    ("subject_last_clips", "subject last 3 clips"),
]


def _cell(v: object) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.3f}"


def markdown_table(rows: list[dict], columns: list[tuple[str, str]] | None = None) -> str:
    columns = columns or _COLUMNS
    head = "| " + " | ".join(t for _, t in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for r in rows:
        cells = [_cell(r.get(k)) for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def contact_sheet(samples: list[DialogueSample], path: Path, per_row: int = 6) -> Path:
    """Sample frames of up to 4 answers, each row with its audio waveform and clip texts."""
    samples = samples[:4]
    fig, axes = plt.subplots(
        2 * len(samples),
        1,
        figsize=(per_row * 1.6, 3.0 * len(samples)),
        gridspec_kw={"height_ratios": [3, 1] * len(samples)},
    )
    axes = np.atleast_1d(axes)
    for i, s in enumerate(samples):
        idx = np.linspace(0, s.frames.shape[0] - 1, per_row).round().astype(int)
        strip = np.concatenate([s.frames[j] for j in idx], axis=1)
        ax = axes[2 * i]
        ax.imshow(strip)
        ax.set_axis_off()
        ax.set_title(
            f"{s.intent} ({s.plan.avatar_voice.name}) motion: '{s.answer.motion}'  "
            f"- {s.answer.speech[:70]}",
            fontsize=7,
            loc="left",
        )
        wav = axes[2 * i + 1]
        t = np.arange(s.audio.size) / s.sample_rate
        wav.plot(t, s.audio, lw=0.3, color="tab:blue")
        for c in s.clips:
            wav.axvline(c.start_frame / s.fps, color="tab:red", lw=0.6)
        for j in idx:
            wav.axvline(j / s.fps, color="gray", lw=0.4, ls=":")
        wav.set_xlim(0, t[-1] if t.size else 1)
        wav.set_yticks([])
        wav.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def eval_reference(cfg: EvalConfig) -> dict:
    """Score the ground truth of `cfg.world`'s split; write JSON, Markdown and a contact sheet."""
    world = Path(cfg.world)
    if not (world / MANIFEST).exists():
        build_world(
            WorldConfig(
                out=world,
                seed=cfg.seed,
                samples=cfg.build_samples,
                workers=2,
                shard_size=max(1, min(100, cfg.build_samples)),
                progress=False,
            )
        )
    samples = []
    for s in WorldDataset(world, cfg.split):
        samples.append(s)
        if len(samples) >= cfg.max_samples:
            break
    if not samples:
        raise ValueError(f"split {cfg.split!r} of {world} is empty")
    t0 = time.perf_counter()
    asr = {lm: Recognizer(lm) for lm in cfg.lms}
    timbre = TimbreMeter()
    rows = [_row(samples, asr, timbre)]
    if cfg.controls:
        for variant in ("noise audio", "shifted audio +5", "swapped face+voice"):
            rows.append(_row(samples, asr, timbre, variant))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    json_rows = [{k: _json_value(v) for k, v in r.items()} for r in rows]
    result = {
        "world": str(world),
        "split": cfg.split,
        "reference": json_rows[0],
        "controls": json_rows[1:],
        "seconds": round(time.perf_counter() - t0, 1),
        "config": {k: str(v) for k, v in asdict(cfg).items()},
    }
    (out / "reference.json").write_text(json.dumps(result, indent=1))
    md = (
        f"Meters on the ground truth of `{world}` ({cfg.split} split, {len(samples)} answers); "
        "control rows break the ground truth on purpose.\n\n" + markdown_table(rows)
    )
    (out / "reference.md").write_text(md)
    contact_sheet(samples, out / "contact_sheet.png")
    return result


def reference_main(cfg: EvalConfig) -> int:
    """Entry point for `run_agent.py eval --reference`: prints the table, returns an exit code."""
    result = eval_reference(cfg)
    print((Path(cfg.out) / "reference.md").read_text(), end="")
    print(f"wrote {Path(cfg.out) / 'reference.json'} ({result['seconds']} s)")
    return 0
