"""The seam between the conversation (`agent/`) and a media transport (aiortc, LiveKit).

A transport is built around a session's `PlayoutBuffer` and sends what it holds on the
session's media clock; the agent only pushes clips to that buffer. Inbound, it hands the
agent 16-kHz mono audio chunks, video frames and the peer's JSON messages, and it carries
the agent's events back to the peer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, runtime_checkable

import av
import numpy as np


@runtime_checkable
class Transport(Protocol):
    def audio_in(self) -> AsyncIterator[np.ndarray]:
        """(N,) float32 16-kHz mono chunks of the peer's audio; ends when the peer is gone."""
        ...

    def video_in(self) -> AsyncIterator[tuple[float, av.VideoFrame]]:
        """(arrival time, frame) for the peer's video; ends when the peer is gone."""
        ...

    def messages(self) -> AsyncIterator[Mapping[str, Any]]:
        """JSON objects the peer sent (e.g. typed text); ends when the peer is gone."""
        ...

    def send_event(self, event: Mapping[str, Any]) -> None:
        """Send one event to the peer, if it has an events channel; never blocks."""
        ...

    async def wait_closed(self) -> None:
        """Return when the peer has gone (hung up, failed, or `close()` was called)."""
        ...

    async def close(self) -> None:
        """Stop the outbound tracks and release the connection. Idempotent."""
        ...
