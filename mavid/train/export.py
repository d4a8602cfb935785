"""Assemble the shipped mavid-tiny directory from the stages' results, in the layout
`mavid.avatar.load_avatar_model` reads:

    <dest>/creator/      the creator-joint run's model/ (mavid/checkpoint.py format, codecs inside)
    <dest>/conductor/    the conductor run's model/ (ThinkerConductor.from_pretrained)
    <dest>/loss-<stage>.png   each stage's loss curves, when given
    <dest>/provenance.json    file sizes and sha256, and each run's train_config.json

Both models are loaded before anything is written; the directory is built beside `dest` and
renamed into place, so a failed export leaves the previous one untouched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from mavid.checkpoint import load_checkpoint
from mavid.conductor.thinker import ThinkerConductor
from mavid.train.main import CONFIG_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run_config(model_dir: Path) -> dict | None:
    """The train_config.json of the run a model/ directory came from, if it sits in one."""
    path = Path(model_dir).parent / CONFIG_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def export_tiny(
    creator: str | Path,
    conductor: str | Path,
    dest: str | Path,
    plots: dict[str, Path] | None = None,
) -> Path:
    """Copy and check the Creator and Conductor results into `dest` (replacing it)."""
    creator, conductor, dest = Path(creator), Path(conductor), Path(dest)
    model = load_checkpoint(creator)  # raises CheckpointError naming the bad file
    if model.audio_codec is None or model.video_vae is None:
        raise ValueError(f"{creator}: mavid-tiny ships its codecs inside the Creator checkpoint")
    ThinkerConductor.from_pretrained(conductor)  # raises ConductorError naming the directory
    for stage, png in (plots or {}).items():
        if not Path(png).is_file():
            raise FileNotFoundError(f"loss plot of {stage!r} not found: {png}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(creator, tmp / "creator")
    shutil.copytree(conductor, tmp / "conductor")
    for stage, png in (plots or {}).items():
        shutil.copyfile(png, tmp / f"loss-{stage}.png")
    files = {
        str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(tmp.rglob("*"))
        if p.is_file()
    }
    provenance = {
        "creator_params": model.creator_parameters(),
        "runs": {"creator": _run_config(creator), "conductor": _run_config(conductor)},
        "files": files,
    }
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=1) + "\n")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest
