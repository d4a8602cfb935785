"""Batches made ahead of the optimizer by worker processes.

A task's `batch(step)` is a pure function of (seed, step), so worker processes can make the
batches of the next steps while the current one trains, and the run still sees exactly the
batches a single-process run sees, in the same order. This matters where making a batch costs
more than training on it: the Conductor's generated visitor turns (espeak-ng speech, features,
camera frames: ~17 ms a turn on one core) feed a GPU step of a few milliseconds.

The workers are forked from the training process before the model moves to an accelerator, so
they inherit the task (its data, tokenizers, generators) without pickling it, and never touch
the accelerator. Each holds one torch thread.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import torch

# The task of the pool being forked; read by the workers only (fork copies it into each).
_FORKED_BATCH: Callable[[int], Any] | None = None


def _init_worker() -> None:
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group: it is the training process's to handle (it
    # stops the pool itself). SIGTERM stays deadly: Pool.terminate() stops workers with it
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _make_batch(step: int) -> Any:
    assert _FORKED_BATCH is not None, "prefetch worker started without a task"
    return _FORKED_BATCH(step)


class BatchPrefetcher:
    """`batches(start, end)` yields `batch_fn(step)` for each step, made `depth` steps ahead by
    `workers` forked processes (in this process when `workers` is 0). Use as a context manager:
    leaving it stops the workers, also when training ends early."""

    def __init__(self, batch_fn: Callable[[int], Any], workers: int, depth: int | None = None):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.batch_fn = batch_fn
        self.workers = workers
        self.depth = depth if depth is not None else 2 * workers
        self._pool = None

    def __enter__(self) -> BatchPrefetcher:
        if self.workers:
            global _FORKED_BATCH
            _FORKED_BATCH = self.batch_fn
            try:
                ctx = multiprocessing.get_context("fork")
                self._pool = ctx.Pool(self.workers, initializer=_init_worker)
            finally:
                _FORKED_BATCH = None  # the children hold their copies; the parent keeps none
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def batches(self, start: int, end: int) -> Iterator[Any]:
        if self._pool is None:
            for step in range(start, end):
                yield self.batch_fn(step)
            return
        pending: deque = deque()
        ahead = start
        for _ in range(start, end):
            while ahead < end and len(pending) < self.depth:
                pending.append(self._pool.apply_async(_make_batch, (ahead,)))
                ahead += 1
            yield pending.popleft().get()
