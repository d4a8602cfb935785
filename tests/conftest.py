"""Shared test helpers for the duplex agent.

- `ToneCreator` / `ScriptedConductor`: a small deterministic model (a tone + the reference face
  with a moving bar) for agent tests that need exact, fast answers. The end-to-end tests run
  the real `mavid.avatar.load_avatar_model()` tiny preset instead.
- `SessionHarness`: THE helper every agent test uses (pipecat-style): it drives a `Session`
  through a scripted `Transport` with real-time audio (speech from espeak-ng) and typed text,
  and collects what comes out: events, and the outbound audio/video read by the real clocked
  tracks on the session's media clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import settings

from agent.session import Session, SessionConfig
from mavid.interfaces import AVClip, CancelToken, DirectiveDelta, MediaSpec, UserTurn
from realtime.playout import PlayoutBuffer
from realtime.tracks import ClockedAudioTrack, ClockedVideoTrack

TINY_SPEC = MediaSpec(height=32, width=32)


def speech_16k(text: str) -> np.ndarray:
    """A spoken sentence (espeak-ng), (N,) float32 at 16 kHz."""
    from mavid.data.speech import synthesize

    return synthesize(text, sample_rate=16_000).audio


# -- a deterministic model -------------------------------------------------------------------
class ToneStream:
    def __init__(self, spec: MediaSpec, work_s: float, fail_at: int | None) -> None:
        self.spec = spec
        self.work_s = work_s
        self.fail_at = fail_at
        self.index = 0
        self.cancelled = 0
        self.started = threading.Event()  # set when a clip's work begins
        self._face = np.full((spec.height, spec.width, 3), 90, dtype=np.uint8)

    def reference_frame(self) -> np.ndarray:
        return self._face

    def next_clip(
        self,
        speech: str,
        motion: str,
        cancel: CancelToken | None = None,
        num_frames: int | None = None,
    ) -> AVClip:
        started = time.monotonic()
        self.started.set()
        num_frames = num_frames or self.spec.clip_frames
        steps = 10
        for _ in range(steps):  # the "denoising steps", each checking the token
            if cancel is not None and cancel.cancelled:
                self.cancelled += 1
                cancel.raise_if_cancelled()
            time.sleep(self.work_s / steps)
        if self.fail_at is not None and self.index == self.fail_at:
            raise RuntimeError("creator exploded")
        n = self.spec.samples_for_frames(num_frames)
        t = np.arange(n) / self.spec.audio_sample_rate
        audio = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        frames = np.repeat(self._face[None], num_frames, axis=0)
        for i in range(num_frames):  # a bar that moves: consecutive frames differ
            frames[i, :, (i * 3) % self.spec.width] = 255
        clip = AVClip(
            index=self.index,
            audio=audio,
            sample_rate=self.spec.audio_sample_rate,
            frames=frames,
            fps=self.spec.fps,
            speech=speech,
            motion=motion,
            gen_seconds=time.monotonic() - started,
        )
        self.index += 1
        return clip


@dataclass
class ToneCreator:
    spec: MediaSpec = TINY_SPEC
    work_s: float = 0.05  # per clip
    fail_at: int | None = None  # clip index that raises
    streams: list[ToneStream] = field(default_factory=list)

    def new_stream(self, reference_image: np.ndarray | None = None, seed: int | None = None):
        stream = ToneStream(self.spec, self.work_s, self.fail_at)
        self.streams.append(stream)
        return stream


@dataclass
class ScriptedConductor:
    reply: str = "Sure. Here is a short answer for you."
    motion: str = "nod gently"
    token_s: float = 0.005
    turns: list[UserTurn] = field(default_factory=list)
    error: Exception | None = None

    def stream(self, turn: UserTurn, cancel: CancelToken) -> Iterator[DirectiveDelta]:
        self.turns.append(turn)
        if self.error is not None:
            raise self.error
        for word in self.reply.split():
            cancel.raise_if_cancelled()
            time.sleep(self.token_s)
            yield DirectiveDelta(speech=word + " ")
        yield DirectiveDelta(motion=self.motion)


# -- the scripted transport and the harness ----------------------------------------------------
class ScriptedTransport:
    """`Transport` for agent tests: real-time 16-kHz audio (silence unless speech is scripted),
    optional video frames, typed messages; records every event with its arrival time."""

    CHUNK = 320  # 20 ms at 16 kHz

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._script: list[np.ndarray] = []
        self._messages: asyncio.Queue[Mapping[str, Any] | None] = asyncio.Queue()
        self._video: asyncio.Queue[tuple[float, av.VideoFrame] | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        self.close_calls = 0
        self.speech_fed: list[tuple[float, float]] = []  # (start, end) monotonic of each script

    def speak(self, audio: np.ndarray) -> None:
        self._script.append(np.asarray(audio, dtype=np.float32))

    def type_text(self, message: Mapping[str, Any]) -> None:
        self._messages.put_nowait(message)

    def show(self, frame: av.VideoFrame) -> None:
        self._video.put_nowait((time.monotonic(), frame))

    async def audio_in(self) -> AsyncIterator[np.ndarray]:
        start = time.monotonic()
        n = 0
        current: np.ndarray | None = None
        pos = 0
        while not self._closed.is_set():
            if current is None and self._script:
                current, pos = self._script.pop(0), 0
                self.speech_fed.append((time.monotonic(), float("nan")))
            if current is not None:
                chunk = current[pos : pos + self.CHUNK]
                pos += self.CHUNK
                if pos >= current.shape[0]:
                    current = None
                    self.speech_fed[-1] = (self.speech_fed[-1][0], time.monotonic())
                if chunk.shape[0] < self.CHUNK:
                    chunk = np.pad(chunk, (0, self.CHUNK - chunk.shape[0]))
            else:
                chunk = np.zeros(self.CHUNK, dtype=np.float32)
            yield chunk
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    async def video_in(self) -> AsyncIterator[tuple[float, av.VideoFrame]]:
        while (item := await self._video.get()) is not None:
            yield item

    async def messages(self) -> AsyncIterator[Mapping[str, Any]]:
        while (item := await self._messages.get()) is not None:
            yield item

    def send_event(self, event: Mapping[str, Any]) -> None:
        self.events.append((time.monotonic(), dict(event)))

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def hang_up(self) -> None:
        self._closed.set()
        self._messages.put_nowait(None)
        self._video.put_nowait(None)

    async def close(self) -> None:
        self.close_calls += 1
        self.hang_up()


@dataclass
class Output:
    audio: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, rms)
    video: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, hash of the frame)


class SessionHarness:
    """Drive one `Session` with scripted audio/text; collect its events and its output media."""

    def __init__(
        self,
        *,
        creator: ToneCreator | None = None,
        conductor: ScriptedConductor | None = None,
        config: SessionConfig | None = None,
        executor: concurrent.futures.Executor,
        vad_executor: concurrent.futures.Executor,
    ) -> None:
        self.creator = creator or ToneCreator()
        self.conductor = conductor or ScriptedConductor()
        self.transport = ScriptedTransport()
        self.stream = self.creator.new_stream()
        self.playout = PlayoutBuffer.for_stream(self.stream)
        self.session = Session(
            "test",
            self.transport,
            self.playout,
            conductor=self.conductor,
            stream=self.stream,
            executor=executor,
            vad_executor=vad_executor,
            config=config,
        )
        self.output = Output()
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> SessionHarness:
        self.run_task = asyncio.create_task(self.session.run())
        audio, video = ClockedAudioTrack(self.playout), ClockedVideoTrack(self.playout)
        self._tracks = (audio, video)
        self._tasks = [
            asyncio.create_task(self._collect_audio(audio)),
            asyncio.create_task(self._collect_video(video)),
        ]
        await self.wait_for(lambda e: e["type"] == "state", within=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.transport.hang_up()
        await asyncio.wait_for(self.run_task, 10)
        for track in self._tracks:
            track.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _collect_audio(self, track: ClockedAudioTrack) -> None:
        while True:
            frame = await track.recv()
            pcm = frame.to_ndarray().astype(np.float32) / 32768.0
            self.output.audio.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2)))))

    async def _collect_video(self, track: ClockedVideoTrack) -> None:
        while True:
            frame = await track.recv()
            rgb = frame.to_ndarray(format="rgb24")
            self.output.video.append((time.monotonic(), hash(rgb.tobytes())))

    # -- scripting ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.transport.speak(speech_16k(text))

    def type_text(self, text: str) -> None:
        self.transport.type_text({"type": "text", "text": text})

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, e in self.transport.events]

    def states(self) -> list[str]:
        return [e["state"] for e in self.events if e["type"] == "state"]

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0, after: int = 0
    ) -> tuple[float, dict[str, Any]]:
        """Wait for the first event (index >= `after`) matching `predicate`."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for t, event in self.transport.events[after:]:
                if predicate(event):
                    return t, event
            await asyncio.sleep(0.01)
        raise AssertionError(f"no matching event within {within} s; events: {self.events}")

    async def wait_state(self, state: str, within: float = 10.0, after: int = 0):
        return await self.wait_for(
            lambda e: e["type"] == "state" and e["state"] == state, within, after
        )

    def loud_after(self, t: float, threshold: float = 0.05) -> list[float]:
        return [ts for ts, rms in self.output.audio if ts >= t and rms > threshold]


@pytest.fixture(autouse=True)
def fresh_aioice_mdns() -> None:
    """aioice keeps its mDNS resolver and an asyncio.Lock in a thread-local, bound to the first
    event loop that resolves a `.local` candidate (Chromium sends those when media permission
    is denied); each test has its own loop, so the next test's offer would fail on it."""
    import aioice.ice

    aioice.ice._mdns.__dict__.clear()


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="test-model")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def vad_executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="test-vad")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def harness_factory(executor, vad_executor) -> Callable[..., SessionHarness]:
    def make(**kwargs: Any) -> SessionHarness:
        return SessionHarness(executor=executor, vad_executor=vad_executor, **kwargs)

    return make


# -- a Creator under other inference settings --------------------------------------------------
def with_settings(model: Any, **settings: Any) -> Any:
    """The same weights as the CreatorModel `model` under other CreatorConfig settings."""
    from mavid.creator.model import CreatorModel

    other = CreatorModel(model.preset.replace_creator(**settings))
    other.load_state_dict(model.state_dict())
    return other


def paired_streams(model: Any, seed: int = 2, **settings: Any) -> tuple[Any, Any]:
    """Streams of `model` as it is and under `settings` (`with_settings`), from one seed."""
    from mavid.creator.stream import MavidCreator

    changed = with_settings(model, **settings)
    return MavidCreator(model).new_stream(seed=seed), MavidCreator(changed).new_stream(seed=seed)


# -- the real model and a running server, for end-to-end tests --------------------------------
@pytest.fixture(scope="session")
def avatar_model() -> Any:
    """The real `load_avatar_model()` embedded preset, loaded once and warmed up."""
    from mavid.avatar import load_avatar_model

    model = load_avatar_model()
    stream = model.creator.new_stream()
    stream.next_clip("hello", "", None, model.creator.spec.first_clip_frames)  # warm-up
    return model


def loopback_config(**overrides: Any) -> Any:
    """A ServerConfig whose ICE traffic stays on 127.0.0.1, short answers for tests."""
    from signaling.server import ServerConfig

    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "ice_host_addresses": ["127.0.0.1"],
        "max_answer_clips": 3,
        "seed": 0,
    }
    base.update(overrides)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def running_server(cfg: Any, model: Any) -> AsyncIterator[tuple[str, Any]]:
    """Serve `build_app(cfg, model)` on loopback; yields (base URL, app)."""
    from aiohttp import web

    from signaling.server import build_app

    app = build_app(cfg, model)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}/", app
    finally:
        await runner.cleanup()


@dataclass
class ToneModel:
    """The deterministic model in the shape of `mavid.avatar.AvatarModel`."""

    conductor: ScriptedConductor = field(default_factory=ScriptedConductor)
    creator: ToneCreator = field(default_factory=ToneCreator)


@pytest.fixture
def tone_model() -> ToneModel:
    return ToneModel()


# Timing-based health checks are for fast machines: CI's 2 cores are shared with WebRTC peers
# and model threads, and a slow example is not a failure.
settings.register_profile("mavid", deadline=None)
settings.load_profile("mavid")
