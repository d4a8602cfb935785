"""mavid: the MAViD model (Conductor + Creator), its codecs, checkpoints and rendering.

Importing `mavid` (or `mavid.interfaces`) does not import torch; the model entry points below
load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mavid.avatar import AvatarModel, load_avatar_model
    from mavid.creator.stream import MavidCreator

__all__ = ["AvatarModel", "MavidCreator", "load_avatar_model"]

_LAZY = {
    "AvatarModel": "mavid.avatar",
    "load_avatar_model": "mavid.avatar",
    "MavidCreator": "mavid.creator.stream",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mavid' has no attribute {name!r}")
