"""`AvatarAgent`: the avatar as a library, for integrators' own asyncio applications.

One agent serves one peer: create it with a model, attach it to a transport (an aiortc
`RTCPeerConnection` the integrator created, or any `realtime.transport.Transport`, e.g. the
LiveKit one), read its events, make it `say` things, `interrupt` it, close it. It owns its
worker threads and its Creator stream, so several agents (different models, different
faces) run side by side in one process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection

from agent.session import BargeInReport, Session, SessionConfig, SessionEnding
from realtime.aiortc_transport import AiortcTransport
from realtime.playout import PlayoutBuffer
from realtime.transport import Transport


@dataclass(frozen=True, eq=False)  # eq=False: an ndarray field has no truthy ==
class AvatarAgentConfig:
    """How one `AvatarAgent` behaves.

    - `session`: turn-taking (VAD), answer clip sizes, typed-text limits.
    - `reference_image`: the avatar's face, (H, W, 3) uint8 RGB at the model's frame size
      (`signaling.server.load_reference_image` reads one from a file); None: the model's own.
    - `seed`: the Creator stream's seed (None: random).
    - `threads`: worker threads for this agent's model work (Conductor + Creator).
    - `session_id`: a name for logs and events (None: a random one).
    """

    session: SessionConfig = field(default_factory=SessionConfig)
    reference_image: np.ndarray | None = None
    seed: int | None = None
    threads: int = 2
    session_id: str | None = None


class AvatarAgent:
    """The avatar for one peer. Usage::

        model = load_avatar_model()              # mavid.avatar: embedded, checkpoint or remote
        async with AvatarAgent(model) as agent:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[...]))
            await agent.attach_peer_connection(pc)    # before setRemoteDescription(offer)
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
            ...                                       # send pc.localDescription to the peer
            await agent.say("Hello!", motion="wave")
            async for event in agent.events():
                ...

    `model` is anything with `.conductor` (a `mavid.interfaces.Conductor`) and `.creator`
    (a `mavid.interfaces.Creator`), e.g. what `mavid.avatar.load_avatar_model` returns.
    """

    def __init__(self, model: Any, config: AvatarAgentConfig | None = None) -> None:
        self.model = model
        self.config = config or AvatarAgentConfig()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.config.threads, thread_name_prefix="agent-model"
        )
        # VAD never queues behind model work
        self._vad_executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="agent-vad"
        )
        self._session: Session | None = None
        self._task: asyncio.Task | None = None
        self._attaching = False
        self._closed = False

    # -- attaching -------------------------------------------------------------------------
    async def attach_peer_connection(self, pc: RTCPeerConnection) -> None:
        """Serve the peer on `pc`. Call it BEFORE `pc.setRemoteDescription(offer)`: the agent
        listens for the peer's tracks and its `events` data channel, and adds its own audio
        and video tracks as soon as the offer is set (so they are in your answer)."""
        if pc.remoteDescription is not None:
            raise RuntimeError("attach the agent before setRemoteDescription(offer)")
        attached = False

        def make(playout: PlayoutBuffer) -> Transport:
            transport = AiortcTransport(pc, playout)

            @pc.on("signalingstatechange")
            def _on_signaling() -> None:
                nonlocal attached
                if pc.signalingState == "have-remote-offer" and not attached:
                    attached = True
                    transport.attach_outbound()

            return transport

        await self.attach(make)

    async def attach(
        self, make_transport: Callable[[PlayoutBuffer], Transport | Awaitable[Transport]]
    ) -> None:
        """Serve the peer on any `realtime.transport.Transport`: `make_transport(playout)`
        builds it (or a coroutine that does) around the session's playout buffer, which the
        transport sends, e.g. for LiveKit::

            await agent.attach(lambda playout: LiveKitTransport.start(room, who, playout))
        """
        if self._closed:
            raise RuntimeError("the agent is closed")
        if self._attaching:
            raise RuntimeError("the agent is already attached (one agent serves one peer)")
        self._attaching = True
        cfg = self.config
        loop = asyncio.get_running_loop()
        try:
            # a Creator stream holds torch state: made off the loop
            stream = await loop.run_in_executor(
                self._executor, self.model.creator.new_stream, cfg.reference_image, cfg.seed
            )
            playout = PlayoutBuffer.for_stream(stream)
            made = make_transport(playout)
            transport = await made if inspect.isawaitable(made) else made
        except BaseException:
            self._attaching = False  # nothing was started: the caller may try again
            raise
        self._session = Session(
            cfg.session_id or secrets.token_urlsafe(9),
            transport,
            playout,
            conductor=self.model.conductor,
            stream=stream,
            executor=self._executor,
            vad_executor=self._vad_executor,
            config=cfg.session,
        )
        self._task = asyncio.create_task(self._session.run(), name=f"agent-{self._session.id}")

    # -- using it --------------------------------------------------------------------------
    @property
    def session_id(self) -> str:
        return self._require().id

    @property
    def state(self) -> str:
        """ "listening", "thinking" or "speaking"."""
        return str(self._require().state)

    @property
    def error(self) -> BaseException | None:
        """The model error that ended the session, if one did."""
        return self._require().error

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """The session's events from now on (the same JSON objects the peer gets on its
        `events` channel: state, vad, transcript, understood, directive, clip, barge_in,
        error), plus `{"type": "dropped", "count": n}` when this reader fell behind. Ends with
        the session. Each call is an independent reader."""
        return aiter(self._require().events.subscribe())

    async def say(self, speech: str, motion: str | None = None) -> int:
        """Speak `speech` (moving as `motion` says) now, bypassing the Conductor; cuts an
        answer already running. Returns the turn number once the answer has started; see
        `wait_idle` to wait until it has been spoken."""
        return self._require().say(speech, motion)

    async def interrupt(self) -> BargeInReport | None:
        """Stop speaking at once, as a barge-in does. None when nothing was being said."""
        return self._require().interrupt()

    async def wait_idle(self) -> None:
        """Wait until the current answer (if any) has been spoken or cut."""
        await self._require().wait_idle()

    async def wait_closed(self) -> None:
        """Wait until the session has ended (the peer left, an error, or `aclose`)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def aclose(self) -> None:
        """End the session (closing its transport) and stop this agent's threads."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.close()
        await self.wait_closed()
        # abandoned model work stops at its next step: do not wait for it
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._vad_executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> AvatarAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _require(self) -> Session:
        if self._session is None:
            raise RuntimeError("attach the agent to a transport first")
        return self._session


__all__ = ["AvatarAgent", "AvatarAgentConfig", "SessionEnding"]
