"""Loss curves of a training run: a PNG drawn from its JSONL log with matplotlib (Agg).

The figure is built on an Agg canvas directly, so drawing never touches pyplot's global state
or a display, and works from any thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Columns of a log row that are not losses.
NOT_LOSSES = frozenset({"step", "lr", "grad_norm", "elapsed_s", "val_head_acc"})


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = values[0]
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        out[i] = acc
    return out


def plot_losses(log: str | Path, out: str | Path, title: str = "training") -> Path:
    """Plot every loss column of `log` (raw, faint, and smoothed) and the learning rate."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    log, out = Path(log), Path(out)
    if not log.exists():
        raise FileNotFoundError(f"no training log at {log}")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{log} has no entries yet")
    steps = np.array([r["step"] for r in rows])
    names = sorted({k for r in rows for k in r if k not in NOT_LOSSES})

    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax, ax_lr = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    positive = all(r[n] > 0 for r in rows for n in names if isinstance(r.get(n), int | float))
    for i, name in enumerate(names):
        have = [(r["step"], r[name]) for r in rows if isinstance(r.get(name), int | float)]
        if not have:
            continue
        x, y = np.array(have, dtype=float).T
        # EMA over ~1/50 of the series (none for short ones); in log space on a log axis, so a
        # rare spike does not lift the smoothed curve for hundreds of steps.
        weight = min(0.99, max(0.0, 1 - 50 / len(x)))
        color = f"C{i % 10}"
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8, marker="." if len(x) < 50 else None)
        smooth = np.exp(_ema(np.log(y), weight)) if positive else _ema(y, weight)
        ax.plot(x, smooth, color=color, label=name, linewidth=1.6)
    if positive:
        ax.set_yscale("log")
    ax.set_ylabel("loss")
    ax.set_title(f"{title}: {len(rows)} steps")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    if any("lr" in r for r in rows):
        ax_lr.plot(steps, [r.get("lr", np.nan) for r in rows], color="k", linewidth=1)
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    ax_lr.grid(True, alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, format="png")
    tmp.replace(out)
    return out
