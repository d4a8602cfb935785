"""The one MAViD Creator checkpoint format: a directory with `config.json` + `model.safetensors`.

config.json = {"format": "mavid-creator", "version": 1, "preset": Preset.to_dict()}; the
safetensors file holds the whole CreatorModel state (for tiny: codecs included). Every failure
names the file and, where one is at fault, the tensor.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mavid.config import Preset
from mavid.creator.model import CreatorModel

FORMAT = "mavid-creator"
VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, truncated or does not match its config."""


def save_checkpoint(
    model: CreatorModel, path: str | Path, storage_dtype: torch.dtype | None = None
) -> Path:
    """Write config.json + model.safetensors. `storage_dtype` (e.g. torch.float16) stores the
    floating-point tensors at that precision (half the bytes); loading casts them back."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "version": VERSION, "preset": model.preset.to_dict()}
    (path / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if storage_dtype is not None:
        state = {k: v.to(storage_dtype) if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path / WEIGHTS_NAME), metadata={"format": FORMAT})
    return path


def read_preset(path: str | Path) -> Preset:
    file = Path(path) / CONFIG_NAME
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file}: not found (a checkpoint is a directory)") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{file}: not valid JSON ({exc})") from None
    if data.get("format") != FORMAT:
        raise CheckpointError(f"{file}: format is {data.get('format')!r}, expected {FORMAT!r}")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{file}: version {data.get('version')} is not {VERSION}")
    try:
        return Preset.from_dict(data["preset"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{file}: bad preset ({exc})") from None


def _header(file: Path) -> dict[str, Any]:
    """Parse the safetensors header ourselves, to name the tensor a truncated file cuts."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{file}: not found") from None
    if len(raw) < 8:
        raise CheckpointError(f"{file}: truncated ({len(raw)} bytes, no safetensors header)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise CheckpointError(f"{file}: truncated inside its header ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{file}: not a safetensors file ({exc})") from None
    available = len(raw) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        end = info["data_offsets"][1]
        if end > available:
            raise CheckpointError(
                f"{file}: truncated: tensor {name!r} needs bytes up to {end}, file has {available}"
            )
    return header


def load_codec_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Only the codec tensors (`audio_codec.*`, `video_vae.*`) of a checkpoint, e.g. of a
    codecs run whose generator part another preset version would not load."""
    path = Path(path)
    read_preset(path)
    file = path / WEIGHTS_NAME
    _header(file)
    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            return {
                k: f.get_tensor(k) for k in f.keys() if k.startswith(("audio_codec.", "video_vae."))
            }
    except Exception as exc:
        raise CheckpointError(f"{file}: unreadable ({exc})") from exc


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> CreatorModel:
    path = Path(path)
    preset = read_preset(path)
    file = path / WEIGHTS_NAME
    _header(file)
    model = CreatorModel(preset)
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(file), framework="pt", device="cpu") as f:
            names = set(f.keys())
            missing = sorted(set(expected) - names)
            if missing:
                raise CheckpointError(
                    f"{file}: missing tensor {missing[0]!r} ({len(missing)} missing)"
                )
            extra = sorted(names - set(expected))
            if extra:
                raise CheckpointError(
                    f"{file}: unexpected tensor {extra[0]!r} ({len(extra)} extra)"
                )
            for name, ref in expected.items():
                t = f.get_tensor(name)
                if t.shape != ref.shape:
                    raise CheckpointError(
                        f"{file}: tensor {name!r} has shape {tuple(t.shape)}, "
                        f"config expects {tuple(ref.shape)}"
                    )
                if t.dtype != ref.dtype and t.is_floating_point() and ref.is_floating_point():
                    t = t.to(ref.dtype)  # stored at another precision (save_checkpoint)
                elif t.dtype != ref.dtype:
                    raise CheckpointError(
                        f"{file}: tensor {name!r} has dtype {t.dtype}, expected {ref.dtype}"
                    )
                state[name] = t
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{file}: unreadable ({exc})") from exc
    model.load_state_dict(state)
    return model.to(device=device, dtype=dtype).eval()
