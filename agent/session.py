"""A session: one peer, one conversation. Turns, answers, barge-in, events, clean ending.

Talks to a `realtime.transport.Transport` only (aiortc or LiveKit is the caller's business)
and pushes answer clips to the session's `PlayoutBuffer`, which that transport sends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.answer import AnswerConfig, AnswerObserver, MadeClip, run_answer
from agent.events import EventFeed
from agent.metrics import AgentMetrics
from agent.state import SessionState, check_transition
from agent.turns import TurnConfig, TurnRate, is_unicode, parse_text_message
from mavid.interfaces import CancelToken, Conductor, CreatorStream, DirectiveDelta, UserTurn
from realtime.playout import PlayoutBuffer
from realtime.transport import Transport
from realtime.vad import StreamingVad, VadConfig, VadEvent
from realtime.video_ring import VideoRing, VideoRingConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionConfig:
    vad: VadConfig = field(default_factory=VadConfig)
    video: VideoRingConfig = field(default_factory=VideoRingConfig)
    answer: AnswerConfig = field(default_factory=AnswerConfig)
    turns: TurnConfig = field(default_factory=TurnConfig)
    event_queue: int = 256  # events kept per in-process listener before its oldest are dropped


class SessionEnding(RuntimeError):
    """The session is ending (or has ended): it takes no more `say`."""


@dataclass(frozen=True)
class _Directives:
    """A Conductor that answers every turn with the directives it was given (`say`)."""

    speech: str
    motion: str

    def stream(self, turn: UserTurn, cancel: CancelToken) -> Iterator[DirectiveDelta]:
        cancel.raise_if_cancelled()
        yield DirectiveDelta(speech=self.speech, motion=self.motion)


@dataclass(frozen=True)
class BargeInReport:
    """What one barge-in did."""

    turn: int
    state: SessionState  # the state it interrupted
    flushed_s: float  # answer media dropped from the playout buffer, unplayed
    clips_made: int  # clips of the cut answer that had been made
    reason: str


@dataclass
class _Answer:
    cancel: CancelToken
    source: str
    turn: int = 0  # numbered when committed
    task: asyncio.Task | None = None
    user_end: float = 0.0  # monotonic time the user's turn ended (for the latency figure)
    clips: int = 0
    # a speculative answer (started at a pause) is made but neither shown nor played until
    # the turn really ends; its events wait here
    committed: asyncio.Event = field(default_factory=asyncio.Event)
    pending: list[dict[str, Any]] = field(default_factory=list)


class _AnswerEvents(AnswerObserver):
    def __init__(self, session: Session, answer: _Answer) -> None:
        self.session, self.answer = session, answer

    def on_directive(self, delta: DirectiveDelta) -> None:
        self.session._on_directive(self.answer, delta)

    def on_heard(self, text: str) -> None:
        self.session._on_heard(self.answer, text)

    def on_understood(self, question: str) -> None:
        self.session._answer_event(self.answer, {"type": "understood", "text": question})

    def on_clip(self, made: MadeClip) -> None:
        self.session._on_clip(self.answer, made)


class Session:
    def __init__(
        self,
        session_id: str,
        transport: Transport,
        playout: PlayoutBuffer,
        *,
        conductor: Conductor,
        stream: CreatorStream,
        executor: concurrent.futures.Executor,
        vad_executor: concurrent.futures.Executor,
        config: SessionConfig | None = None,
        metrics: AgentMetrics | None = None,
        vad: StreamingVad | None = None,
    ) -> None:
        self.id = session_id
        self.transport = transport
        self.playout = playout
        self.conductor = conductor
        self.stream = stream
        self.executor = executor
        self.vad_executor = vad_executor
        self.config = config or SessionConfig()
        self.metrics = metrics or AgentMetrics()
        self._vad = vad
        self._ring = VideoRing(self.config.video)
        self._text_rate = TurnRate(self.config.turns)
        self._video_fps = self.config.video.sample_fps
        self._stream_lock = threading.Lock()
        self.state = SessionState.LISTENING
        self.turns = 0
        self.barge_ins: list[BargeInReport] = []
        self._answer: _Answer | None = None
        self._cut: set[asyncio.Task] = set()  # answers cancelled by barge-in, still unwinding
        self._tasks: list[asyncio.Task] = []
        self._done = asyncio.Event()
        self._closed = False
        self._counted = False  # counted in sessions_active
        self.error: BaseException | None = None
        self._stalls_seen = 0
        # in-process listeners (AvatarAgent.events(), the SSE endpoint); the peer gets the
        # same events over the transport
        self.events = EventFeed(self.config.event_queue)

    # -- logging and events ---------------------------------------------------------------
    def _log(self, event: str, **fields: Any) -> None:
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        logger.info("session=%s event=%s %s", self.id, event, extra)

    def _emit(self, event: dict[str, Any]) -> None:
        self.transport.send_event(event)
        self.events.publish(event)

    def _set_state(self, new: SessionState, **info: Any) -> None:
        if new == self.state:
            return
        check_transition(self.state, new)
        self.state = new
        self._emit({"type": "state", "state": str(new), "turn": self.turns, **info})

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the peer until it goes (or a model error ends the session); then clean up."""
        loop = asyncio.get_running_loop()
        self.metrics.sessions_total.inc()
        self.metrics.sessions_active.inc()
        self._counted = True
        self._log("session_start")
        try:
            if self._vad is None:
                # loading silero is a torch call: off the loop
                self._vad = await loop.run_in_executor(
                    self.vad_executor, StreamingVad, self.config.vad
                )
            if self._done.is_set():  # closed while starting
                return
            self._emit({"type": "state", "state": str(self.state), "turn": self.turns})
            self._tasks = [
                asyncio.create_task(self._guarded(self._audio_loop(), "audio")),
                asyncio.create_task(self._guarded(self._video_loop(), "video")),
                asyncio.create_task(self._guarded(self._message_loop(), "messages")),
            ]
            closed = asyncio.create_task(self.transport.wait_closed())
            done = asyncio.create_task(self._done.wait())
            self._tasks += [closed, done]
            await asyncio.wait({closed, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await self.close()

    async def close(self) -> None:
        """End the session: cancel the answer and loops, close the transport. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._done.set()
        current = asyncio.current_task()
        if self._answer is not None and self._answer.task is not None:
            self._answer.cancel.cancel()
            self._answer.task.cancel()
            await asyncio.gather(self._answer.task, return_exceptions=True)
            self._answer = None
        tasks = [t for t in [*self._tasks, *self._cut] if t is not current]
        self._cut.clear()
        self._tasks = []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.playout.flush()
        try:
            await self.transport.close()
        except Exception:  # a transport that fails to close must not leave the session counted
            logger.exception("session=%s event=transport_close_failed", self.id)
        if self._counted:
            self.metrics.sessions_active.dec()
        self._log("session_end", turns=self.turns, barge_ins=len(self.barge_ins))
        self.events.end()

    @property
    def ending(self) -> bool:
        """True once the session has begun to end (peer gone, error, or `close()`)."""
        return self._closed or self._done.is_set()

    async def _guarded(self, loop: Coroutine[Any, Any, None], where: str) -> None:
        """Run an inbound loop; a bug in it ends the session loudly, never silently."""
        try:
            await loop
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("session=%s event=error where=%s", self.id, where)
            self._fail(exc, where)

    def _fail(self, exc: BaseException, where: str) -> None:
        """A model or pipeline error ends this session (only this one) cleanly."""
        self.error = exc
        self.metrics.errors_total.inc()
        self._log("error", where=where, error=repr(exc)[:200])
        self._emit({"type": "error", "message": f"{where} failed: {exc}"[:500], "fatal": True})
        self._done.set()

    # -- inbound ---------------------------------------------------------------------------
    async def _audio_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._vad is not None
        async for chunk in self.transport.audio_in():
            try:
                events = await loop.run_in_executor(self.vad_executor, self._vad.process, chunk)
            except Exception as exc:
                self._fail(exc, "vad")
                return
            received = time.monotonic()
            for event in events:
                self._on_vad(event, received)

    async def _video_loop(self) -> None:
        async for arrived, frame in self.transport.video_in():
            try:
                self._ring.offer(frame, arrived)
            except Exception as exc:  # a frame av cannot convert is skipped, not fatal
                self._log("video_frame_dropped", error=repr(exc)[:100])

    async def _message_loop(self) -> None:
        async for message in self.transport.messages():
            text, error = parse_text_message(message, self.config.turns)
            if error is not None:
                self._emit({"type": "error", "message": error, "fatal": False})
                continue
            assert text is not None
            if not self._text_rate.allow(time.monotonic()):
                self._emit({"type": "error", "message": "too many typed turns", "fatal": False})
                continue
            self._emit({"type": "transcript", "source": "text", "text": text})
            if self._answer is not None:
                self.barge_in("text")
            turn = UserTurn(text=text, video=self._ring.snapshot(), video_fps=self._video_fps)
            answer = self._start_answer(turn, "text")
            self._commit(answer, time.monotonic())

    def _on_vad(self, event: VadEvent, received: float) -> None:
        if event.kind in ("onset", "onset_cancel"):
            # the first speech window mutes the answer at once; "start" (min speech) cuts it,
            # "onset_cancel" (too short: a click, a cough) lets it go on
            if self._answer is not None and self._answer.committed.is_set():
                self.playout.muted = event.kind == "onset"
            return
        if event.kind in ("start", "end"):
            self._emit({"type": "vad", "speaking": event.kind == "start", "at": round(event.at, 3)})
        if event.kind == "start":
            self._log("user_speech_start", at=f"{event.onset:.3f}")
            if self._answer is not None:
                self.barge_in("speech")
            return
        if event.kind == "resume":  # the pause was not the end: drop the early answer
            if self._answer is not None and not self._answer.committed.is_set():
                self._discard(self._answer)
            return
        assert event.audio is not None and event.offset is not None
        turn = UserTurn(audio=event.audio, audio_sample_rate=16_000, video=self._ring.snapshot())
        if event.kind == "pause":
            if self._answer is not None and not self._answer.committed.is_set():
                self._discard(self._answer)
            if self._answer is None:
                self._start_answer(turn, "speech")
            return
        # "end": the speech ended `event.at - event.offset` stream seconds before we learnt it
        user_end = received - (event.at - event.offset)
        answer = self._answer
        if answer is not None and answer.committed.is_set():
            # an answer from elsewhere (a typed turn sent while the user spoke): the spoken
            # turn is the newer one
            self.barge_in("speech")
            answer = None
        if answer is None:
            answer = self._start_answer(turn, "speech")
        self._commit(answer, user_end)

    # -- driven from outside (the Python API, HTTP) ------------------------------------------
    def say(self, speech: str, motion: str | None = None) -> int:
        """Speak `speech` (and move as `motion` says) now, bypassing the Conductor: the same
        Creator path, streaming and barge-in as an answer. An answer already running is cut
        first. Returns the turn number; ValueError on bad input, SessionEnding when ending."""
        if not isinstance(speech, str) or not speech.strip():
            raise ValueError("speech must be a non-empty string")
        if motion is not None and not isinstance(motion, str):
            raise ValueError("motion must be a string or null")
        if not is_unicode(speech) or not is_unicode(motion or ""):
            raise ValueError("speech and motion must be valid Unicode")
        limit = self.config.turns.max_text_chars
        if len(speech) > limit or len(motion or "") > limit:
            raise ValueError(f"speech and motion must be at most {limit} characters")
        if self.ending:
            raise SessionEnding(f"session {self.id} is ending")
        if self._answer is not None:
            self.barge_in("say")
        directives = _Directives(speech.strip(), (motion or "").strip())
        answer = self._start_answer(UserTurn(text=speech), "say", conductor=directives)
        self._commit(answer, time.monotonic())
        return answer.turn

    def interrupt(self) -> BargeInReport | None:
        """Stop the avatar at once, as a barge-in does (None when it was not answering)."""
        return self.barge_in("interrupt")

    # -- answers ---------------------------------------------------------------------------
    def _start_answer(
        self, turn: UserTurn, source: str, conductor: Conductor | None = None
    ) -> _Answer:
        """Start making an answer; it is shown and played once `_commit` is called."""
        answer = _Answer(CancelToken(), source)
        answer.task = asyncio.create_task(
            self._run_answer(turn, answer, conductor or self.conductor)
        )
        self._answer = answer
        return answer

    def _commit(self, answer: _Answer, user_end: float) -> None:
        """The user's turn has ended: number it, show it, and let its clips play."""
        self.turns += 1
        answer.turn, answer.user_end = self.turns, user_end
        self.metrics.turns_total.labels(source=answer.source).inc()
        self._log("turn_start", turn=answer.turn, source=answer.source)
        self._set_state(SessionState.THINKING, source=answer.source)
        for event in answer.pending:
            self._emit({**event, "turn": answer.turn})
        answer.pending.clear()
        answer.committed.set()

    def _discard(self, answer: _Answer) -> None:
        """Drop an uncommitted answer: nothing of it was shown or played."""
        answer.cancel.cancel()
        assert answer.task is not None
        answer.task.cancel()
        self._cut.add(answer.task)
        answer.task.add_done_callback(self._cut.discard)
        self._answer = None

    async def _run_answer(self, turn: UserTurn, answer: _Answer, conductor: Conductor) -> None:
        try:
            made = await run_answer(
                turn,
                answer.cancel,
                conductor=conductor,
                stream=self.stream,
                stream_lock=self._stream_lock,
                playout=self.playout,
                executor=self.executor,
                observer=_AnswerEvents(self, answer),
                config=self.config.answer,
                gate=answer.committed,
            )
            await answer.committed.wait()  # an answer with no clips still waits for its turn
            # the answer is made; it ends when its last sample has played
            await self.playout.clock.sleep_until(self.playout.end_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self._answer is answer:
                self._answer = None
            self._fail(exc, "answer")
            return
        if self._answer is not answer:
            return  # dropped meanwhile: whoever dropped it owns the state
        self.playout.end_answer()
        self._answer = None
        self._set_state(SessionState.LISTENING)
        self._log("turn_end", turn=answer.turn, clips=len(made))

    # what run_answer reports (on the loop), through an _AnswerEvents bound to its answer
    def _on_directive(self, answer: _Answer, delta: DirectiveDelta) -> None:
        self._answer_event(answer, {"type": "directive", "speech": delta.speech,
                                    "motion": delta.motion})  # fmt: skip

    def _on_heard(self, answer: _Answer, text: str) -> None:
        self._answer_event(answer, {"type": "transcript", "source": "speech", "text": text})

    def _answer_event(self, answer: _Answer, event: dict[str, Any]) -> None:
        """Shown now, or once the answer is committed (a speculative one waits)."""
        if answer is not self._answer:
            return  # a dropped answer, still unwinding: its words are not shown
        if not answer.committed.is_set():
            answer.pending.append(event)
        else:
            self._emit({**event, "turn": answer.turn})

    def _on_clip(self, answer: _Answer, made: MadeClip) -> None:
        if answer is not self._answer:
            return
        clip, scheduled = made.clip, made.scheduled
        rtf = clip.duration / clip.gen_seconds if clip.gen_seconds > 0 else float("inf")
        self.metrics.clip_seconds.observe(clip.gen_seconds)
        self.metrics.creator_rtf.observe(rtf)
        if self.playout.stalls > self._stalls_seen:
            self.metrics.stalls_total.inc(self.playout.stalls - self._stalls_seen)
            self._stalls_seen = self.playout.stalls
            self._log("stall", gap=f"{scheduled.gap_s:.3f}")
        answer.clips += 1
        if answer.clips == 1:
            start = self.playout.clock.to_wall(scheduled.start_s)
            self.metrics.response_latency.observe(max(0.0, start - answer.user_end))
        self._emit(
            {
                "type": "clip",
                "turn": answer.turn,
                "index": clip.index,
                "duration": clip.duration,
                "gen_seconds": round(clip.gen_seconds, 4),
                "start": round(scheduled.start_s, 4),
                "gap": round(scheduled.gap_s, 4),
                "speech": clip.speech,
            }
        )
        if self.state == SessionState.THINKING:
            self._set_state(SessionState.SPEAKING)

    # -- barge-in --------------------------------------------------------------------------
    def barge_in(self, reason: str = "speech") -> BargeInReport | None:
        """Cut the answer now: cancel model work, flush the playout, back to LISTENING.

        Returns what was cut, or None when there was no answer to cut.
        """
        answer = self._answer
        if answer is None:
            return None
        self._discard(answer)  # model work stops at its next step, in its thread
        if not answer.committed.is_set():
            return None  # an early answer was never shown or played: nothing to report
        interrupted = self.state
        flushed = self.playout.flush()
        report = BargeInReport(answer.turn, interrupted, flushed, answer.clips, reason)
        self.barge_ins.append(report)
        self.metrics.barge_ins_total.inc()
        self._log("barge_in", turn=answer.turn, reason=reason, flushed=f"{flushed:.3f}")
        self._emit({"type": "barge_in", "turn": answer.turn, "reason": reason, "flushed": flushed})
        self._set_state(SessionState.LISTENING, interrupted=True)
        return report

    async def wait_idle(self) -> None:
        """Wait until no answer is running (for tests and orderly shutdown)."""
        while self._answer is not None and self._answer.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._answer.task)
