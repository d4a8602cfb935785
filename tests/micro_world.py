"""A tiny world shared by the training tests: built once per test session.

MICRO's model sizes at 48 px (the world's face renderer needs more than MICRO's 32 px).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

from mavid.config import MICRO
from mavid.data.build import WorldConfig, build_world

PRESET = dataclasses.replace(
    MICRO, name="micro48", media=dataclasses.replace(MICRO.media, height=48, width=48)
)


def micro_world(tmp_path_factory) -> Path:
    """Four samples (seed 5) at PRESET's media sizes; the same folder for every caller."""
    return _build(tmp_path_factory.getbasetemp())


@functools.cache
def _build(base: Path) -> Path:
    root = base / "micro-world"
    build_world(
        WorldConfig(
            root, seed=5, samples=4, workers=0, shard_size=4, spec=PRESET.media, progress=False
        )
    )
    return root


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
