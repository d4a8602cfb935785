"""One answer: the Conductor's directives, cut into clip prompts, made into clips, played.

The Conductor streams in one worker thread; the Creator makes clip after clip in worker
threads, each conditioned on the previous one by its `CreatorStream`; clip j+1 is being made
while clip j plays. Nothing here blocks the event loop. Cancellation is explicit: set the
`CancelToken` (model work stops at its next step) and cancel the task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mavid.interfaces import (
    AVClip,
    CancelToken,
    Conductor,
    CreatorStream,
    DirectiveDelta,
    HearingConductor,
    MediaSpec,
    UnderstandingConductor,
    UserTurn,
)
from mavid.segment import ClipSegmenter
from realtime.playout import PlayoutBuffer, Scheduled
from realtime.resample import OUT_RATE, clip_audio_to_output


@dataclass(frozen=True)
class AnswerConfig:
    words_per_clip: float = 2.5
    first_clip_words: float = 1.5
    max_ahead_s: float = 2.0  # generation waits while this much media is queued unplayed
    max_clips: int = 60  # an answer stops after this many clips, whatever the Conductor says
    # A full-length clip is made only when it will be ready before the queued media has
    # played (judged by the RTF measured so far); otherwise a first-clip-length one, so a
    # slow Creator shows as shorter clips rather than gaps.
    adaptive_clips: bool = True
    clip_margin: float = 1.3  # ... with this safety factor on the time it is expected to take


@dataclass(frozen=True)
class MadeClip:
    clip: AVClip
    scheduled: Scheduled


class AnswerObserver:
    """What an answer reports as it goes (the session turns it into events, logs, metrics)."""

    def on_directive(self, delta: DirectiveDelta) -> None: ...

    def on_heard(self, text: str) -> None:
        """The words of a spoken turn, as the Conductor's hearing wrote them down."""

    def on_understood(self, question: str) -> None:
        """The known question the Conductor read the turn as (its knowledge base)."""

    def on_clip(self, made: MadeClip) -> None: ...


class _End:
    """Marks the end of the Conductor's stream in the delta queue."""


@dataclass(frozen=True)
class _Heard:
    """The words heard in a spoken turn (before the Conductor's first delta)."""

    text: str


@dataclass(frozen=True)
class _Understood:
    """The known question the turn was read as (before the Conductor's first delta)."""

    question: str


def _pump_conductor(
    conductor: Conductor,
    turn: UserTurn,
    cancel: CancelToken,
    put: Callable[[object], None],
) -> None:
    """Worker thread: forward each delta (or the error that ended the stream) to the loop.

    A Conductor that writes spoken turns down (`HearingConductor`: the tiny Thinker with its
    hearing) reports the words, and one that reads turns as known questions
    (`UnderstandingConductor`: with its knowledge base) the question; both go out before the
    answer does.
    """
    try:
        reports: dict[str, Callable[[str], None]] = {}
        if isinstance(conductor, HearingConductor) and conductor.hears:
            reports["on_heard"] = lambda words: put(_Heard(words))
        if isinstance(conductor, UnderstandingConductor) and conductor.understands:
            reports["on_understood"] = lambda question: put(_Understood(question))
        deltas = conductor.stream(turn, cancel, **reports)
        for delta in deltas:
            put(delta)
        put(_End())
    except BaseException as exc:  # forwarded, re-raised on the loop
        put(exc)


def _make_clip(
    stream: CreatorStream,
    lock: threading.Lock,
    speech: str,
    motion: str,
    cancel: CancelToken,
    num_frames: int,
    first: bool = False,
) -> tuple[AVClip, np.ndarray]:
    """Worker thread: one clip and its 48-kHz audio for the playout buffer."""
    # a clip abandoned by barge-in may still be finishing its step in another thread
    with lock:
        cancel.raise_if_cancelled()
        if first and hasattr(stream, "clear_speech"):
            stream.clear_speech()  # speech a cut answer left queued is not this answer's
        clip = stream.next_clip(speech, motion, cancel, num_frames)
    n_out = clip.frames.shape[0] * OUT_RATE // clip.fps
    return clip, clip_audio_to_output(clip.audio, clip.sample_rate, n_out)


async def run_answer(
    turn: UserTurn,
    cancel: CancelToken,
    *,
    conductor: Conductor,
    stream: CreatorStream,
    stream_lock: threading.Lock,
    playout: PlayoutBuffer,
    executor: concurrent.futures.Executor,
    observer: AnswerObserver,
    config: AnswerConfig,
    gate: asyncio.Event | None = None,
) -> list[MadeClip]:
    """Run one answer to its last pushed clip (not until it has played). Returns the clips.

    With a `gate`, clips are made at once but the first is played only once the gate is set
    (an answer started early, at a pause in the user's speech).
    """
    loop = asyncio.get_running_loop()
    deltas: asyncio.Queue[object] = asyncio.Queue()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(deltas.put_nowait, item)
        except RuntimeError:  # the loop is gone: the session ended, nobody listens
            pass

    conductor_job = loop.run_in_executor(executor, _pump_conductor, conductor, turn, cancel, put)
    segmenter = ClipSegmenter(config.words_per_clip, config.first_clip_words)
    prompts: asyncio.Queue[str | None] = asyncio.Queue()
    motion: list[str] = []

    async def read_directives() -> None:
        while True:
            item = await deltas.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _End):
                break
            if isinstance(item, _Heard):
                observer.on_heard(item.text)
                continue
            if isinstance(item, _Understood):
                observer.on_understood(item.question)
                continue
            assert isinstance(item, DirectiveDelta)
            observer.on_directive(item)
            motion.append(item.motion)
            for prompt in segmenter.feed(item.speech):
                prompts.put_nowait(prompt)
        for prompt in segmenter.flush():
            prompts.put_nowait(prompt)
        prompts.put_nowait(None)

    reader = asyncio.create_task(read_directives())
    made: list[MadeClip] = []
    spec = stream.spec
    get: asyncio.Future | None = None
    try:
        while len(made) < config.max_clips:
            get = asyncio.ensure_future(prompts.get())
            done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                reader.result()  # raises the Conductor's error, if that is why it ended
                prompt = await prompts.get()  # ended cleanly: the prompts are all queued
            else:
                prompt = get.result()
            if prompt is None:
                # the prompts ran out, but a stream may still hold speech they queued
                if getattr(stream, "pending_speech_frames", 0) <= 0:
                    break
                prompts.put_nowait(None)  # come back here after this clip
                prompt = ""
            # keep generation at most max_ahead_s ahead of what the peer hears
            await playout.clock.sleep_until(playout.end_s - config.max_ahead_s)
            num_frames = _clip_frames(spec, made, playout.queued_s(), config)
            started = time.monotonic()
            clip, audio = await loop.run_in_executor(
                executor, _make_clip, stream, stream_lock, prompt, "".join(motion), cancel,
                num_frames, not made,
            )  # fmt: skip
            if clip.gen_seconds <= 0:
                clip = _with_gen_seconds(clip, time.monotonic() - started)
            if gate is not None:
                await gate.wait()
            made.append(MadeClip(clip, playout.push(audio, clip.frames)))
            observer.on_clip(made[-1])
        return made
    finally:
        cancel.cancel()  # stops the Conductor if the answer ended early (cap, error, cancel)
        # a cut answer leaves its pending prompts.get(): cancelled here, not left to the GC
        pending = [t for t in (reader, get) if t is not None]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        conductor_job.cancel()  # only detaches: the thread exits at its next token


def _clip_frames(
    spec: MediaSpec, made: list[MadeClip], queued_s: float, config: AnswerConfig
) -> int:
    if not made:
        return spec.first_clip_frames
    if not config.adaptive_clips:
        return spec.clip_frames
    recent = made[-3:]
    rtf = sum(m.clip.duration for m in recent) / max(1e-6, sum(m.clip.gen_seconds for m in recent))
    needed_s = config.clip_margin * spec.clip_frames / spec.fps / rtf
    return spec.clip_frames if queued_s >= needed_s else spec.first_clip_frames


def _with_gen_seconds(clip: AVClip, seconds: float) -> AVClip:
    return dataclasses.replace(clip, gen_seconds=seconds)
