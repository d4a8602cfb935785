"""From an SDP offer to a running session: peer connection, transport, playout, session.

Shared by `/offer` and `/whip`. Whatever fails on the way leaves nothing allocated.
"""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from agent.session import Session
from realtime.aiortc_transport import AiortcTransport
from realtime.playout import PlayoutBuffer
from signaling.state import AppState

logger = logging.getLogger(__name__)


class BadOffer(ValueError):
    """The SDP offer cannot be used (malformed, or nothing to talk over)."""


async def start_session(state: AppState, sdp: str) -> tuple[Session, str]:
    """Negotiate `sdp` and start a session in a reserved registry slot; returns the answer.

    The caller has reserved the slot; on success it is taken over by the session, on failure
    it is released here.
    """
    loop = asyncio.get_running_loop()
    cfg = state.config
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(u) for u in cfg.ice_servers]))
    transport: AiortcTransport | None = None
    added = False
    try:
        # a model error here is the server's fault (500), not the offer's
        stream = await loop.run_in_executor(
            state.executor, state.model.creator.new_stream, state.reference_image, cfg.seed
        )
        playout = PlayoutBuffer.for_stream(stream)
        # before the offer: it hears the peer's tracks
        transport = AiortcTransport(pc, playout, connect_timeout_s=cfg.connect_timeout_s)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc's parser raises many kinds on bad SDP
            if isinstance(exc, MemoryError):
                raise
            raise BadOffer(f"invalid SDP offer: {type(exc).__name__}: {exc}"[:300]) from exc
        if not pc.getTransceivers() and pc.sctp is None:
            raise BadOffer("the offer has no audio, video or data channel")
        transport.attach_outbound()
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BadOffer(f"cannot answer the offer: {type(exc).__name__}: {exc}"[:300]) from exc
        session = Session(
            secrets.token_urlsafe(9),
            transport,
            playout,
            conductor=state.model.conductor,
            stream=stream,
            executor=state.executor,
            vad_executor=state.vad_executor,
            config=cfg.session_config(),
            metrics=state.metrics,
        )
        state.registry.add(session)
        added = True
        return session, pc.localDescription.sdp
    finally:
        if not added:
            state.registry.release()
            if transport is not None:
                await transport.close()  # also stops the readers of the peer's tracks
            else:
                await pc.close()
