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

import logging
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

log = logging.getLogger(__name__)

# The task of the pool being forked; read by the workers only (fork copies it into each).
_FORKED_BATCH: Callable[[int], Any] | None = None


def _init_worker() -> None:
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group: it is the training process's to handle (it
    # stops the pool itself). SIGTERM stays deadly (a stray worker can be killed); a worker
    # killed mid-batch breaks the pool, and the batches go on in the training process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _make_batch(step: int) -> Any:
    assert _FORKED_BATCH is not None, "prefetch worker started without a task"
    return _FORKED_BATCH(step)


class BatchPrefetcher:
    """`batches(start, end)` yields `batch_fn(step)` for each step, made `depth` steps ahead by
    `workers` forked processes (in this process when `workers` is 0). Use as a context manager:
    leaving it stops the workers, also when training ends early.

    A worker that dies (killed: `pkill -f` on a run's command line reaches its workers too)
    loses the batches in flight; they, and every later one, are then made in this process:
    the same batches (pure functions of the step), only slower, and never a hang."""

    def __init__(self, batch_fn: Callable[[int], Any], workers: int, depth: int | None = None):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.batch_fn = batch_fn
        self.workers = workers
        self.depth = depth if depth is not None else 2 * workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> BatchPrefetcher:
        if self.workers:
            global _FORKED_BATCH
            _FORKED_BATCH = self.batch_fn
            try:
                self._pool = ProcessPoolExecutor(
                    self.workers,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_init_worker,
                )
                # fork them all now, while _FORKED_BATCH is set (the executor forks lazily)
                for f in [self._pool.submit(int, 0) for _ in range(self.workers)]:
                    f.result()
            except BaseException:
                self._stop()
                raise
            finally:
                _FORKED_BATCH = None  # the children hold their copies; the parent keeps none
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._pool is not None:
            # batches not started are dropped; one being made finishes (a second at most)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def batches(self, start: int, end: int) -> Iterator[Any]:
        pending: deque[tuple[int, Future]] = deque()
        ahead = start
        for step in range(start, end):
            try:
                while self._pool is not None and ahead < end and len(pending) < self.depth:
                    pending.append((ahead, self._pool.submit(_make_batch, ahead)))
                    ahead += 1
                if pending:
                    made, future = pending.popleft()
                    assert made == step, (made, step)
                    yield future.result()
                    continue
            except BrokenProcessPool:
                log.warning("a batch worker died: batches are made here from step %d", step)
                pending.clear()
                self._stop()
            yield self.batch_fn(step)
