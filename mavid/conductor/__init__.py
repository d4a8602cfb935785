"""The MAViD Conductor: understands a user turn and streams speech / motion directives.

The format and parser import light; the backends (torch / transformers / openai) load on
first use, so code that only parses directives never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mavid.conductor.format import M_BOS, M_EOS, SYSTEM_PROMPT
from mavid.conductor.parser import DirectiveParser, parse_directives

if TYPE_CHECKING:
    from mavid.conductor.openai_backend import OpenAIConductor
    from mavid.conductor.stage1 import collate, stage1_loss
    from mavid.conductor.thinker import ConductorConfig, ThinkerConductor
    from mavid.conductor.tokenizer import build_tiny_tokenizer

_LAZY = {
    "OpenAIConductor": "mavid.conductor.openai_backend",
    "ConductorConfig": "mavid.conductor.thinker",
    "ThinkerConductor": "mavid.conductor.thinker",
    "build_tiny_tokenizer": "mavid.conductor.tokenizer",
    "collate": "mavid.conductor.stage1",
    "stage1_loss": "mavid.conductor.stage1",
}

__all__ = [
    "M_BOS",
    "M_EOS",
    "SYSTEM_PROMPT",
    "ConductorConfig",
    "DirectiveParser",
    "OpenAIConductor",
    "ThinkerConductor",
    "build_tiny_tokenizer",
    "collate",
    "parse_directives",
    "stage1_loss",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
