"""The generic training loop: learning, logging/plotting, checkpoints, exact resume."""

import json
import os
import signal

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from mavid.train.data import pick, step_rng
from mavid.train.loop import (
    LoopConfig,
    checkpoint_dirs,
    latest_checkpoint,
    optimizer_step,
    read_log,
    train_loop,
    warmup_cosine,
)


class Regression:
    """A small real task: an MLP with dropout (so the global RNG state matters on resume)."""

    def __init__(self, seed: int = 0, signal_at: int | None = None, nan_at: int | None = None):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(64, 8, generator=g)
        self.y = self.x @ torch.randn(8, 1, generator=g)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.model = nn.Sequential(
                nn.Linear(8, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1)
            )
        self.seed, self.signal_at, self.nan_at = seed, signal_at, nan_at

    def trainable(self):
        return self.model.parameters()

    def batch(self, step):
        idx = pick(step_rng(self.seed, step), len(self.x), 16)
        return self.x[idx], self.y[idx]

    def train_step(self, batch, optimizer, max_grad_norm, step):
        if step == self.signal_at:  # a real Ctrl-C, delivered in the middle of a step
            os.kill(os.getpid(), signal.SIGINT)
        self.model.train()
        x, y = batch
        loss = (self.model(x) - y).pow(2).mean()
        if step == self.nan_at:
            loss = loss * float("nan")
        norm = optimizer_step(optimizer, loss, self.model.parameters(), max_grad_norm)
        return {"loss": float(loss.detach()), "grad_norm": norm}


def cfg(out, **kw):
    base = dict(out=out, steps=12, lr=1e-2, warmup_steps=2, checkpoint_every=4, progress=False)
    return LoopConfig(**{**base, **kw})


def weights(out, step):
    return load_file(str(out / "checkpoints" / f"step-{step:08d}" / "model.safetensors"))


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_learns_logs_plots_and_keeps_few_checkpoints(tmp_path):
    result = train_loop(Regression(), cfg(tmp_path, steps=40, keep_checkpoints=2))
    rows = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert {"lr", "grad_norm", "elapsed_s"} <= rows[0].keys()
    assert result.step == 40 and not result.stopped_early and result.resumed_from == 0
    assert [s for s, _ in checkpoint_dirs(tmp_path)] == [36, 40]
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["step"] == 40 and state["metrics"]["loss"] == rows[-1]["loss"]
    with Image.open(result.plot) as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_sigint_stops_at_a_step_boundary_and_resume_is_bitwise_exact(tmp_path):
    straight = tmp_path / "straight"
    train_loop(Regression(), cfg(straight))

    cut = tmp_path / "cut"
    first = train_loop(Regression(signal_at=5), cfg(cut))
    assert first.stopped_early and first.step == 6  # step index 5 finished, then it stopped
    assert latest_checkpoint(cut).name == "step-00000006"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    # a fresh task object (new process in real life): all state comes from the checkpoint
    second = train_loop(Regression(), cfg(cut))
    assert second.resumed_from == 6 and second.step == 12 and not second.stopped_early
    assert_same(weights(straight, 12), weights(cut, 12))
    assert [r["step"] for r in read_log(cut / "log.jsonl")] == list(range(1, 13))


def test_stop_after_then_resume_matches_and_drops_log_rows_past_the_checkpoint(tmp_path):
    straight, pieces = tmp_path / "a", tmp_path / "b"
    train_loop(Regression(), cfg(straight))
    r = train_loop(Regression(), cfg(pieces, stop_after=7))
    assert r.step == 7 and r.stopped_early
    with (pieces / "log.jsonl").open("a") as f:  # rows written after the checkpoint, then a crash
        f.write(json.dumps({"step": 8, "loss": 1.0}) + "\n")
    train_loop(Regression(), cfg(pieces))
    assert_same(weights(straight, 12), weights(pieces, 12))
    rows = read_log(pieces / "log.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 13))
    # the training clock goes on across the resume: it never falls back to 0
    elapsed = [r["elapsed_s"] for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[7] >= elapsed[6] > 0


def test_refuses_to_overwrite_or_resume_another_run(tmp_path):
    train_loop(Regression(), cfg(tmp_path, stop_after=4))
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train_loop(Regression(), cfg(tmp_path, resume=False))
    with pytest.raises(ValueError, match=r"lr was 0\.01"):
        train_loop(Regression(), cfg(tmp_path, lr=0.5))
    assert latest_checkpoint(tmp_path).name == "step-00000004"  # nothing lost


def test_nan_loss_is_a_clear_error_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError, match="last good checkpoint is step 4"):
        train_loop(Regression(nan_at=6), cfg(tmp_path))
    assert latest_checkpoint(tmp_path).name == "step-00000004"


def test_corrupt_checkpoint_names_the_file(tmp_path):
    train_loop(Regression(), cfg(tmp_path, stop_after=4))
    f = latest_checkpoint(tmp_path) / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(RuntimeError, match=r"cannot resume from checkpoint .*step-00000004"):
        train_loop(Regression(), cfg(tmp_path))


def test_warmup_cosine_schedule():
    f = warmup_cosine(steps=10, warmup=2, min_ratio=0.1)
    assert [f(0), f(1), f(2)] == [0.5, 1.0, 1.0]
    assert f(6) == pytest.approx(0.55)
    assert f(10) == pytest.approx(0.1) and f(50) == pytest.approx(0.1)
    values = [f(i) for i in range(2, 11)]
    assert values == sorted(values, reverse=True)


def test_bad_loop_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        LoopConfig(out=tmp_path, steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        LoopConfig(out=tmp_path, steps=5, warmup_steps=5)


class WorkerPid(Regression):
    """Regression whose batches also say which process made them."""

    def batch(self, step):
        x, y = super().batch(step)
        return x, y, os.getpid()

    def train_step(self, batch, optimizer, max_grad_norm, step):
        x, y, pid = batch
        self.makers.add(pid)
        return super().train_step((x, y), optimizer, max_grad_norm, step)


def test_batch_workers_make_the_same_run_in_other_processes(tmp_path):
    straight, fanned = WorkerPid(), WorkerPid()
    straight.makers, fanned.makers = set(), set()
    train_loop(straight, cfg(tmp_path / "a"))
    train_loop(fanned, cfg(tmp_path / "b", workers=2))
    assert straight.makers == {os.getpid()}
    assert fanned.makers and os.getpid() not in fanned.makers  # made ahead, elsewhere
    assert_same(weights(tmp_path / "a", 12), weights(tmp_path / "b", 12))
    # a stop mid-run ends the workers with the loop (none left behind)
    cut = WorkerPid(signal_at=5)
    cut.makers = set()
    train_loop(cut, cfg(tmp_path / "c", workers=2))
    import multiprocessing

    assert multiprocessing.active_children() == []


class KilledWorker(Regression):
    """The batch worker making step `kill_at` is killed (SIGTERM, as `pkill -f` on the run's
    command line does); with `parent`, the training process gets the same signal."""

    def __init__(self, kill_at: int, parent: int | None = None, **kw):
        super().__init__(**kw)
        self.kill_at, self.parent, self.trainer = kill_at, parent, os.getpid()

    def batch(self, step):
        if step == self.kill_at and os.getpid() != self.trainer:
            if self.parent is not None:
                os.kill(self.parent, signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return super().batch(step)


@pytest.mark.timeout(120)  # the old pool waited forever for the lost batch
def test_a_killed_batch_worker_loses_no_batch_and_leaves_no_process(tmp_path):
    import multiprocessing

    train_loop(Regression(), cfg(tmp_path / "a"))
    # the worker alone dies: the lost batch and the rest are made here, the same run
    alone = train_loop(KilledWorker(5), cfg(tmp_path / "b", workers=1))
    assert alone.step == 12 and not alone.stopped_early
    assert_same(weights(tmp_path / "a", 12), weights(tmp_path / "b", 12))
    assert multiprocessing.active_children() == []
    # worker and trainer signalled together: a clean stop at a step boundary, then a resume
    first = train_loop(KilledWorker(5, parent=os.getpid()), cfg(tmp_path / "c", workers=1))
    assert first.stopped_early and first.step < 12
    assert multiprocessing.active_children() == []
    second = train_loop(Regression(), cfg(tmp_path / "c", workers=1))
    assert second.step == 12 and not second.stopped_early
    assert_same(weights(tmp_path / "a", 12), weights(tmp_path / "c", 12))


def test_a_device_that_is_not_here_is_a_clear_error_before_anything_is_written(
    tmp_path, monkeypatch
):
    from mavid.train import TrainConfig, train_main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on the CPU machines
    cfg = TrainConfig("conductor", tmp_path / "world", tmp_path / "run", device="cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        train_main(cfg)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="device"):
        TrainConfig("conductor", tmp_path, tmp_path, device="gpu0")
    with pytest.raises(ValueError, match="workers"):
        LoopConfig(out=tmp_path, steps=5, workers=-1)
