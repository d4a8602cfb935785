"""What the HTTP handlers share: config, model, worker pools, sessions, metrics."""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from agent.metrics import AgentMetrics
from signaling.registry import SessionRegistry

if TYPE_CHECKING:
    from signaling.server import ServerConfig


@dataclass
class AppState:
    config: ServerConfig
    model: Any  # has .conductor (Conductor) and .creator (Creator)
    executor: concurrent.futures.ThreadPoolExecutor  # model work
    vad_executor: concurrent.futures.ThreadPoolExecutor  # VAD only: never queued behind models
    registry: SessionRegistry
    metrics: AgentMetrics
    reference_image: np.ndarray | None


STATE = web.AppKey("mavid_state", AppState)
