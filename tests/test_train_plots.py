"""Loss-curve PNGs from a training log."""

import json

import pytest
from PIL import Image

from mavid.train.plots import plot_losses


def write_log(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_plots_every_loss_column(tmp_path):
    rows = [
        {"step": i, "lr": 1e-3, "loss": 4 / i, "l_ar": 3 / i, "l_diff": 1 / i, "grad_norm": 2.0}
        for i in range(1, 30)
    ]
    out = plot_losses(write_log(tmp_path / "log.jsonl", rows), tmp_path / "plots" / "loss.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (800, 500)
        assert len(img.convert("RGB").getcolors(1 << 16)) > 10  # curves drawn, not blank


def test_missing_or_empty_log_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training log"):
        plot_losses(tmp_path / "none.jsonl", tmp_path / "x.png")
    with pytest.raises(ValueError, match="no entries"):
        plot_losses(write_log(tmp_path / "log.jsonl", []), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
