"""Training of mavid-tiny: the codecs and the paper's three stages, one command each.

`train_main(TrainConfig(...))` runs one stage (resumable, logged, plotted); `export_tiny`
assembles the shipped checkpoint directory from the stages' results.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mavid.train.config import STAGES, TrainConfig
    from mavid.train.export import export_tiny
    from mavid.train.main import TrainResult, train_main
    from mavid.train.plots import plot_losses

__all__ = ["STAGES", "TrainConfig", "TrainResult", "export_tiny", "plot_losses", "train_main"]

_LAZY = {
    "STAGES": "mavid.train.config",
    "TrainConfig": "mavid.train.config",
    "TrainResult": "mavid.train.main",
    "train_main": "mavid.train.main",
    "export_tiny": "mavid.train.export",
    "plot_losses": "mavid.train.plots",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
