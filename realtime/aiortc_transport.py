"""The embedded transport: one aiortc `RTCPeerConnection` per session.

Also the ONE place that pins ICE host candidates (`pinned_host_addresses`): aioice leaves
127.0.0.1 out when it gathers, and deployments need to choose interfaces, so the server
exposes it as the `ice_host_addresses` option.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import aioice.ice
import av
import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from realtime.playout import PlayoutBuffer
from realtime.resample import InboundResampler
from realtime.tracks import ClockedAudioTrack, ClockedVideoTrack
from realtime.transport import PeerMessageError, drain, parse_peer_message, put_latest

logger = logging.getLogger(__name__)

EVENTS_LABEL = "events"
MAX_BUFFERED_BYTES = 1 << 20  # events are dropped rather than queued without bound
_AUDIO_QUEUE = 250  # 5 s of 20-ms chunks; if the session lags further, the oldest go
_VIDEO_QUEUE = 4
_BACKLOG = 32
# A peer that never completes ICE (it posted an offer and went) would otherwise hold its
# session slot for good: aioice's answering side keeps checking and never fails.
CONNECT_TIMEOUT_S = 20.0


@contextlib.contextmanager
def pinned_host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather ICE host candidates only on `addresses` while inside (None/empty: no change).

    Patches `aioice.ice.get_host_addresses`, process-wide; contexts must nest (LIFO).
    """
    if not addresses:
        yield
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]  # ValueError on a bad address
    original = aioice.ice.get_host_addresses

    def pinned(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in parsed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = pinned
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


class AiortcTransport:
    """`realtime.transport.Transport` over an aiortc peer connection.

    Build it before `setRemoteDescription` (it listens for the peer's tracks and data
    channel), then call `attach_outbound()` before `createAnswer`.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        playout: PlayoutBuffer,
        *,
        connect_timeout_s: float | None = CONNECT_TIMEOUT_S,
    ) -> None:
        self.pc = pc
        self.playout = playout
        self.audio_track = ClockedAudioTrack(playout)
        self.video_track = ClockedVideoTrack(playout)
        self._audio: asyncio.Queue[np.ndarray | None] = asyncio.Queue(_AUDIO_QUEUE)
        self._video: asyncio.Queue[tuple[float, av.VideoFrame] | None] = asyncio.Queue(_VIDEO_QUEUE)
        self._messages: asyncio.Queue[Mapping[str, Any] | None] = asyncio.Queue(64)
        self._channel: RTCDataChannel | None = None
        # events sent before the channel opened (the first state event, usually)
        self._backlog: collections.deque[str] = collections.deque(maxlen=_BACKLOG)
        self._readers: list[asyncio.Task] = []
        self._closed = asyncio.Event()
        self._closing = False
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)
        self._connect_deadline: asyncio.TimerHandle | None = None
        if connect_timeout_s is not None:
            self._connect_deadline = asyncio.get_running_loop().call_later(
                connect_timeout_s, self._not_connected_in_time, connect_timeout_s
            )

    # -- wiring ----------------------------------------------------------------------
    def attach_outbound(self) -> None:
        """Send our tracks on the transceivers the offer opened (a WHIP peer may lack some)."""
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if "audio" in kinds:
            self.pc.addTrack(self.audio_track)
        if "video" in kinds:
            self.pc.addTrack(self.video_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._readers.append(asyncio.ensure_future(self._read_audio(track)))
        elif track.kind == "video":
            self._readers.append(asyncio.ensure_future(self._read_video(track)))

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_LABEL or self._channel is not None:
            return
        self._channel = channel
        channel.on("message", self._on_message)
        if channel.readyState == "open":
            self._send_backlog()
        else:
            channel.on("open", self._send_backlog)

    def _send_backlog(self) -> None:
        assert self._channel is not None
        while self._backlog:
            self._channel.send(self._backlog.popleft())

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected" and self._connect_deadline is not None:
            self._connect_deadline.cancel()
            self._connect_deadline = None
        if self.pc.connectionState in ("failed", "closed"):
            self._mark_closed()

    def _not_connected_in_time(self, timeout_s: float) -> None:
        self._connect_deadline = None
        if self.pc.connectionState == "connected" or self._closed.is_set():
            return
        logger.warning("peer did not connect within %.1f s: ending its session", timeout_s)
        self._mark_closed()

    def _on_message(self, message: str | bytes) -> None:
        try:
            parsed = parse_peer_message(message)
        except PeerMessageError as exc:
            self.send_event({"type": "error", "message": str(exc)})
            return
        if self._messages.full():
            self.send_event({"type": "error", "message": "too many messages"})
            return
        self._messages.put_nowait(parsed)

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        resampler = InboundResampler()
        try:
            while True:
                frame = await track.recv()
                chunk = resampler.resample(frame)
                if chunk.size:
                    put_latest(self._audio, chunk)
        except MediaStreamError:
            pass
        finally:
            put_latest(self._audio, None)

    async def _read_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                put_latest(self._video, (time.monotonic(), frame))
        except MediaStreamError:
            pass
        finally:
            put_latest(self._video, None)

    # -- Transport ---------------------------------------------------------------------
    def audio_in(self) -> AsyncIterator[np.ndarray]:
        return drain(self._audio)

    def video_in(self) -> AsyncIterator[tuple[float, av.VideoFrame]]:
        return drain(self._video)

    def messages(self) -> AsyncIterator[Mapping[str, Any]]:
        return drain(self._messages)

    def send_event(self, event: Mapping[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        channel = self._channel
        if channel is None or channel.readyState != "open":
            if not self._closed.is_set():
                self._backlog.append(text)  # bounded: the oldest go first
            return
        if channel.bufferedAmount > MAX_BUFFERED_BYTES:
            return
        channel.send(text)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _mark_closed(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for queue in (self._audio, self._video, self._messages):
            put_latest(queue, None)

    async def _close_transports(self) -> None:
        """What `pc.close()` would have stopped, for the parts that exist."""
        for transceiver in self.pc.getTransceivers():
            for part in (transceiver.sender, transceiver.receiver):
                with contextlib.suppress(Exception):
                    await part.stop()
            transport = transceiver.receiver.transport
            if transport is not None:
                with contextlib.suppress(Exception):
                    await transport.stop()
                    await transport.transport.stop()
        sctp = self.pc.sctp
        if sctp is not None:
            with contextlib.suppress(Exception):
                await sctp.stop()
                await sctp.transport.stop()
                await sctp.transport.transport.stop()

    async def close(self) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._connect_deadline is not None:
            self._connect_deadline.cancel()
            self._connect_deadline = None
        self.audio_track.stop()
        self.video_track.stop()
        try:
            await self.pc.close()
        except Exception:  # a half-negotiated pc (bad offer) may fail to close
            logger.warning("peer connection did not close cleanly", exc_info=True)
            await self._close_transports()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._mark_closed()
