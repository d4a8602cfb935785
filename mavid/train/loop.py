"""The generic resumable training loop: AdamW, warmup + cosine schedule, gradient clipping,
atomic checkpoints, resume from the latest one, a tqdm bar and a JSONL log of losses.

A stage is a `TrainTask`: it owns the model, says which parameters train, makes the batch of a
step (deterministic in (seed, step), so a resumed run sees the batches a straight run sees) and
runs one optimisation step. Checkpoint layout under `out/checkpoints/step-XXXXXXXX/`:

    model.safetensors   the task's whole model (shared tensors handled by safetensors)
    trainer.pt          optimizer + schedule state and the torch / numpy / python RNG states
    state.json          step, the loop config and the last metrics

A checkpoint is written into a temporary directory and renamed into place, so a crash never
leaves a half-written one that resume would pick up.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn
from tqdm import tqdm

from mavid.train.plots import plot_losses
from mavid.train.prefetch import BatchPrefetcher

CHECKPOINTS = "checkpoints"
LOG_NAME = "log.jsonl"
PLOT_NAME = "loss.png"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class TrainTask(Protocol):
    """One training stage as the loop sees it."""

    model: nn.Module  # saved whole in every checkpoint

    def trainable(self) -> Iterable[nn.Parameter]:
        """The parameters the optimizer updates (frozen parts are left out)."""
        ...

    def batch(self, step: int) -> Any:
        """The batch of `step`; a pure function of (the task's seed, step)."""
        ...

    def train_step(
        self, batch: Any, optimizer: torch.optim.Optimizer, max_grad_norm: float, step: int
    ) -> dict[str, float]:
        """Forward, backward, clip and optimizer.step(); returns metrics with a "loss" key."""
        ...


def _validate(task: TrainTask) -> dict[str, float]:
    """A task may define `validate() -> {"val_...": float}` (held-out data, no RNG use); it
    runs at every checkpoint and its metrics join that step's log row."""
    fn = getattr(task, "validate", None)
    return fn() if fn is not None else {}


@dataclass(frozen=True)
class LoopConfig:
    out: Path
    steps: int
    lr: float = 3e-4
    seed: int = 0
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = 1.0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    resume: bool = True
    stop_after: int | None = None  # end this run at this step (checkpointed); schedule unchanged
    progress: bool = True
    desc: str = "train"
    plot_every_s: float = 60.0  # redraw loss.png at a checkpoint at most this often (and at end)
    device: str = "cpu"  # where the model trains ("cuda": a GPU); batches move there per step
    workers: int = 0  # processes making the next batches ahead (mavid.train.prefetch)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must lie in [0, steps), got {self.warmup_steps}")
        if self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("checkpoint_every and keep_checkpoints must be >= 1")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"stop_after must be >= 1, got {self.stop_after}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class LoopResult:
    step: int  # steps done in total (this run and earlier ones)
    resumed_from: int  # 0 for a fresh start
    stopped_early: bool  # Ctrl-C / SIGTERM / stop_after ended the run before `steps`
    metrics: dict[str, float]  # of the last step run (empty if none ran)
    checkpoint: Path | None
    log: Path
    plot: Path | None


def warmup_cosine(steps: int, warmup: int, min_ratio: float) -> Callable[[int], float]:
    """LR multiplier of step i: linear warmup to 1, then cosine down to `min_ratio`."""

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        progress = min(1.0, (i - warmup) / max(1, steps - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def optimizer_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    params: Iterable[nn.Parameter],
    max_grad_norm: float,
) -> float:
    """zero_grad, backward, clip to `max_grad_norm`, step; returns the pre-clip grad norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(list(params), max_grad_norm)
    optimizer.step()
    return float(norm)


# -- checkpoints -------------------------------------------------------------------------------


def checkpoint_dirs(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under `out`, oldest first."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and (d / "state.json").is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(out: Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1][1] if dirs else None


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def save_training_checkpoint(
    out: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    config: dict[str, Any],
    metrics: dict[str, float],
    keep: int,
) -> Path:
    root = Path(out) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "rng": _rng_state(),
        },
        tmp / "trainer.pt",
    )
    state = {"step": step, "config": config, "metrics": metrics}
    (tmp / "state.json").write_text(json.dumps(state, indent=1, default=str) + "\n")
    if final.exists():  # the same step saved again (e.g. stop right after a periodic save)
        shutil.rmtree(final)
    tmp.rename(final)
    for _, old in checkpoint_dirs(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> int:
    """Restore model, optimizer, schedule and RNG states in place; returns the saved step."""
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        missing, unexpected = load_model(model, str(path / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise ValueError(f"model mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
        trainer = torch.load(path / "trainer.pt", weights_only=True)
        optimizer.load_state_dict(trainer["optimizer"])
        schedule.load_state_dict(trainer["schedule"])
        _set_rng_state(trainer["rng"])
    except Exception as exc:
        raise RuntimeError(f"cannot resume from checkpoint {path}: {exc}") from exc
    return int(state["step"])


# -- log ---------------------------------------------------------------------------------------


def read_log(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_log(path: Path, step: int) -> list[dict[str, Any]]:
    """Drop entries past `step` (written after the checkpoint a resume starts from); returns
    the entries kept."""
    if not path.exists():
        return []
    keep = [r for r in read_log(path) if r["step"] <= step]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep))
    tmp.replace(path)
    return keep


# -- stop on Ctrl-C / SIGTERM at a step boundary ----------------------------------------------


class _StopRequest:
    def __init__(self) -> None:
        self.requested = False


@contextmanager
def _graceful_stop() -> Iterator[_StopRequest]:
    """The first SIGINT/SIGTERM lets the current step finish and the loop checkpoint and end;
    a second SIGINT interrupts at once (default handler)."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- the loop ----------------------------------------------------------------------------------


def train_loop(task: TrainTask, cfg: LoopConfig) -> LoopResult:
    """Train `task` per `cfg`. Batch workers fork before the model moves to `cfg.device`."""
    with BatchPrefetcher(task.batch, cfg.workers) as prefetcher:
        task.model.to(cfg.device)
        try:
            return _train_loop(task, cfg, prefetcher)
        finally:
            task.model.to("cpu")  # what the caller saves or evaluates next lives on the CPU


def _train_loop(task: TrainTask, cfg: LoopConfig, prefetcher: BatchPrefetcher) -> LoopResult:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path, plot_path = out / LOG_NAME, out / PLOT_NAME
    params = [p for p in task.trainable() if p.requires_grad]
    if not params:
        raise ValueError("the task has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
    )
    skip = ("progress", "stop_after", "plot_every_s", "device", "workers")
    config = {k: v for k, v in asdict(cfg).items() if k not in skip}
    start = 0
    found = latest_checkpoint(out)
    if found is not None:
        if not cfg.resume:
            raise FileExistsError(
                f"{out} already holds checkpoints (latest {found.name}); resume, or train into "
                "another folder"
            )
        saved = json.loads((found / "state.json").read_text())["config"]
        changed = [k for k in ("steps", "lr", "seed", "warmup_steps") if saved.get(k) != config[k]]
        if changed:
            raise ValueError(
                f"cannot resume {found}: {changed[0]} was {saved[changed[0]]!r}, now "
                f"{config[changed[0]]!r} (the run would not be the one checkpointed)"
            )
        start = load_training_checkpoint(found, task.model, optimizer, schedule)
    else:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
    kept = _truncate_log(log_path, start)
    # a resumed run's clock goes on from its checkpoint's: elapsed_s is the training time
    # (the pause between the stop and the resume is not counted)
    trained_before = float(kept[-1].get("elapsed_s", 0.0)) if kept else 0.0

    end = cfg.steps if cfg.stop_after is None else min(cfg.steps, cfg.stop_after)
    metrics: dict[str, float] = {}
    saved_at = start  # the step of the newest checkpoint on disk
    started = last_plot = time.perf_counter()

    def save(step: int, final: bool = False) -> Path:
        nonlocal last_plot
        path = save_training_checkpoint(
            out, step, task.model, optimizer, schedule, config, metrics, cfg.keep_checkpoints
        )
        if final or time.perf_counter() - last_plot >= cfg.plot_every_s:
            plot_losses(log_path, plot_path, title=cfg.desc)
            last_plot = time.perf_counter()
        return path

    step = start
    stopped = False
    with (
        _graceful_stop() as stop,
        log_path.open("a") as log,
        tqdm(total=cfg.steps, initial=start, desc=cfg.desc, disable=not cfg.progress) as bar,
    ):
        for batch in prefetcher.batches(start, end):
            lr = optimizer.param_groups[0]["lr"]
            metrics = task.train_step(batch, optimizer, cfg.max_grad_norm, step)
            if not math.isfinite(metrics["loss"]):
                raise FloatingPointError(
                    f"loss is {metrics['loss']} at step {step + 1}; the last good checkpoint "
                    f"is step {saved_at} in {out / CHECKPOINTS}"
                )
            schedule.step()
            step += 1
            if step % cfg.checkpoint_every == 0 or step == end:
                metrics = {**metrics, **_validate(task)}
            row = {"step": step, "lr": lr, **metrics}
            row["elapsed_s"] = round(trained_before + time.perf_counter() - started, 3)
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "grad_norm"})
            if stop.requested and step < end:
                stopped = True
                break
            if step % cfg.checkpoint_every == 0 and step < end:
                save(step)
                saved_at = step
    # The end of this run (finished, stop_after or a stop request) is always checkpointed. An
    # exception from a step skips this: the last periodic checkpoint is the state to trust.
    checkpoint = save(step, final=True) if step > start else latest_checkpoint(out)
    return LoopResult(
        step=step,
        resumed_from=start,
        stopped_early=stopped or step < cfg.steps,
        metrics=metrics,
        checkpoint=checkpoint,
        log=log_path,
        plot=plot_path if plot_path.exists() else None,
    )
