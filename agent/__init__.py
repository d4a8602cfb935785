"""agent: the conversation over a media transport.

The public, stable surface for integrators is what `__all__` lists; every other module
under `agent/` is internal and may change.
"""

from agent.answer import AnswerConfig
from agent.avatar_agent import AvatarAgent, AvatarAgentConfig
from agent.session import BargeInReport, SessionConfig, SessionEnding
from agent.turns import TurnConfig
from realtime.vad import VadConfig

__all__ = [
    "AnswerConfig",
    "AvatarAgent",
    "AvatarAgentConfig",
    "BargeInReport",
    "SessionConfig",
    "SessionEnding",
    "TurnConfig",
    "VadConfig",
]
