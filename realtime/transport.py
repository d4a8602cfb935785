"""The seam between the conversation (`agent/`) and a media transport (aiortc, LiveKit).

A transport is built around a session's `PlayoutBuffer` and sends what it holds on the
session's media clock; the agent only pushes clips to that buffer. Inbound, it hands the
agent 16-kHz mono audio chunks, video frames and the peer's JSON messages, and it carries
the agent's events back to the peer.
"""

from __future__ import annotations

import asyncio
import json
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


# -- helpers every transport shares ---------------------------------------------------------

MAX_MESSAGE_BYTES = 16_384  # a typed turn is text; anything bigger is refused


class PeerMessageError(ValueError):
    """A peer's message was refused; str(exc) is the reason to send back to the peer."""


def parse_peer_message(data: str | bytes) -> dict[str, Any]:
    """The JSON object a peer sent (data channel, data packet), or PeerMessageError."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise PeerMessageError("message too large")
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise PeerMessageError("message is not JSON") from None
    except RecursionError:
        # deep nesting fits in 16 KB; raised from a transport's receive callback it would end
        # that transport's receive loop (aiortc's DTLS loop, a LiveKit room's event loop)
        raise PeerMessageError("message is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise PeerMessageError("message must be a JSON object")
    return parsed


def put_latest(queue: asyncio.Queue, item: object) -> None:
    """Put without blocking; a full queue drops its oldest item (live media, not a log)."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


async def drain(queue: asyncio.Queue) -> AsyncIterator[Any]:
    """The queue's items until the None that ends it."""
    while (item := await queue.get()) is not None:
        yield item
