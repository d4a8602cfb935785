"""The LiveKit transport at the livekit.rtc interface (no LiveKit server can run here).

`FakeRoom` stands in for `rtc.Room` only (the part that needs a server); every frame still
goes through real livekit.rtc objects: the user's media is published from real
`rtc.AudioSource`/`rtc.VideoSource` tracks and read by the transport with
`rtc.AudioStream`/`rtc.VideoStream`; the avatar's media goes through the real
`rtc.AVSynchronizer` into real sources, and the tests read it back from the published
tracks with `rtc.AudioStream`/`rtc.VideoStream`.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from livekit import rtc

from realtime.clock import MediaClock
from realtime.livekit_transport import (
    ATTR_FINAL,
    ATTR_TRACK_ID,
    CHAT_TOPIC,
    EVENTS_TOPIC,
    FRAME_S,
    TRANSCRIPTION_TOPIC,
    LiveKitTransport,
    LiveKitTransportConfig,
    PlaybackTracker,
    PlayoutPump,
)
from realtime.playout import PlayoutBuffer, PlayoutConfig
from realtime.resample import OUT_RATE
from realtime.transport import Transport

FPS = 25
SIZE = 32


# -- the room boundary ----------------------------------------------------------------------
@dataclass
class FakePublication:
    sid: str
    track: Any
    kind: int
    source: int = 0
    subscribed: bool = True


@dataclass
class FakeTextInfo:
    """Fields of rtc.TextStreamInfo the transport reads."""

    topic: str
    size: int | None
    attributes: dict[str, str] = field(default_factory=dict)


class FakeTextReader:
    def __init__(self, text: str, topic: str) -> None:
        self.info = FakeTextInfo(topic, len(text.encode()))
        self._text = text

    async def read_all(self) -> str:
        return self._text


class FakeTextWriter:
    def __init__(self, topic: str, attributes: dict[str, str]) -> None:
        self.topic = topic
        self.attributes = dict(attributes)
        self.chunks: list[str] = []
        self.closed_with: dict[str, str] | None = None

    async def write(self, text: str) -> None:
        assert self.closed_with is None, "write after close"
        self.chunks.append(text)

    async def aclose(self, *, reason: str = "", attributes: dict[str, str] | None = None) -> None:
        if self.closed_with is not None:
            raise RuntimeError("Stream already closed")
        self.closed_with = dict(attributes or {})


class FakeParticipant:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.sid = f"PA_{identity}"
        self.kind = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD
        self.track_publications: dict[str, FakePublication] = {}


class FakeLocalParticipant(FakeParticipant):
    def __init__(self) -> None:
        super().__init__("avatar")
        self.data: list[tuple[str, bytes]] = []
        self.writers: list[FakeTextWriter] = []

    async def publish_track(self, track: Any, options: rtc.TrackPublishOptions) -> FakePublication:
        sid = f"TR_local_{len(self.track_publications)}"
        publication = FakePublication(sid, track, track.kind, options.source)
        self.track_publications[sid] = publication
        return publication

    async def unpublish_track(self, sid: str) -> None:
        del self.track_publications[sid]

    async def publish_data(
        self,
        payload: bytes | str,
        *,
        reliable: bool = True,
        destination_identities: list[str] | None = None,
        topic: str = "",
    ) -> None:
        self.data.append((topic, payload.encode() if isinstance(payload, str) else payload))

    async def stream_text(
        self,
        *,
        topic: str = "",
        attributes: dict[str, str] | None = None,
        sender_identity: str | None = None,
        **_: Any,
    ) -> FakeTextWriter:
        writer = FakeTextWriter(topic, attributes or {})
        writer.sender_identity = sender_identity
        self.writers.append(writer)
        return writer

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for topic, body in self.data if topic == EVENTS_TOPIC]

    def track(self, kind: int) -> Any:
        return next(p.track for p in self.track_publications.values() if p.kind == kind)


class FakeRoom(rtc.EventEmitter):
    """The `rtc.Room` surface the transport and the worker use, emitting real room events."""

    def __init__(self, name: str = "test-room") -> None:
        super().__init__()
        self.name = self.sid = name
        self.local_participant = FakeLocalParticipant()
        self.remote_participants: dict[str, FakeParticipant] = {}
        self.text_handlers: dict[str, Any] = {}
        self.connected = True
        self._sources: list[Any] = []

    def isconnected(self) -> bool:
        return self.connected

    def register_text_stream_handler(self, topic: str, handler: Any) -> None:
        if topic in self.text_handlers:
            raise ValueError(f"text stream handler for topic {topic!r} already set")
        self.text_handlers[topic] = handler

    def unregister_text_stream_handler(self, topic: str) -> None:
        self.text_handlers.pop(topic, None)

    async def disconnect(self) -> None:
        self.connected = False
        self.emit("disconnected", rtc.DisconnectReason.CLIENT_INITIATED)

    # -- what a remote user does --------------------------------------------------------------
    def join(self, identity: str) -> FakeParticipant:
        participant = FakeParticipant(identity)
        self.remote_participants[identity] = participant
        self.emit("participant_connected", participant)
        return participant

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(identity)
        self.emit("participant_disconnected", participant)

    def _publish(self, participant: FakeParticipant, track: Any) -> None:
        sid = f"TR_{participant.identity}_{len(participant.track_publications)}"
        publication = FakePublication(sid, track, track.kind)
        participant.track_publications[sid] = publication
        self.emit("track_subscribed", track, publication, participant)

    def publish_microphone(
        self, participant: FakeParticipant, rate: int = 48_000
    ) -> rtc.AudioSource:
        source = rtc.AudioSource(rate, 1, queue_size_ms=1000)
        self._publish(participant, rtc.LocalAudioTrack.create_audio_track("mic", source))
        self._sources.append(source)
        return source

    def publish_camera(self, participant: FakeParticipant) -> rtc.VideoSource:
        source = rtc.VideoSource(SIZE * 2, SIZE)
        self._publish(participant, rtc.LocalVideoTrack.create_video_track("cam", source))
        self._sources.append(source)
        return source

    def send_chat(self, identity: str, text: str) -> None:
        self.text_handlers[CHAT_TOPIC](FakeTextReader(text, CHAT_TOPIC), identity)

    def send_data(self, identity: str, payload: bytes, topic: str = EVENTS_TOPIC) -> None:
        packet = rtc.DataPacket(
            data=payload,
            kind=rtc.DataPacketKind.KIND_RELIABLE,
            participant=self.remote_participants.get(identity),  # type: ignore[arg-type]
            topic=topic,
        )
        self.emit("data_received", packet)

    async def aclose(self) -> None:
        for source in self._sources:
            await source.aclose()


# -- helpers --------------------------------------------------------------------------------
def make_playout(clock: MediaClock | None = None, size: int = SIZE) -> PlayoutBuffer:
    face = np.full((size, size, 3), 60, dtype=np.uint8)
    return PlayoutBuffer(clock or MediaClock(), face, PlayoutConfig(fps=FPS))


def tone_clip(seconds: float, level: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(audio (N,) int16 at 48 kHz, frames (F, H, W, 3)) of a bright 440-Hz clip."""
    frames = round(seconds * FPS)
    n = frames * OUT_RATE // FPS
    t = np.arange(n) / OUT_RATE
    audio = (level * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return audio, np.full((frames, SIZE, SIZE, 3), 230, dtype=np.uint8)


class Receiver:
    """Reads a published track back with rtc.AudioStream / rtc.VideoStream."""

    def __init__(self, audio_track: Any, video_track: Any) -> None:
        self.audio: list[tuple[float, float]] = []  # (monotonic, rms) per 10-ms frame
        self.video: list[tuple[float, float]] = []  # (monotonic, mean brightness)
        self.video_size: tuple[int, int] | None = None
        self._streams = [
            rtc.AudioStream(audio_track, sample_rate=OUT_RATE, num_channels=1),
            rtc.VideoStream(video_track, format=rtc.VideoBufferType.RGB24),
        ]
        self._tasks = [
            asyncio.create_task(self._read_audio(self._streams[0])),
            asyncio.create_task(self._read_video(self._streams[1])),
        ]

    async def _read_audio(self, stream: rtc.AudioStream) -> None:
        async for event in stream:
            pcm = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32) / 32768
            self.audio.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2)))))

    async def _read_video(self, stream: rtc.VideoStream) -> None:
        async for event in stream:
            rgb = np.frombuffer(event.frame.data, dtype=np.uint8)
            self.video.append((time.monotonic(), float(rgb.mean())))
            self.video_size = (event.frame.width, event.frame.height)

    def loud_seconds(
        self, after: float, before: float = float("inf"), threshold: float = 0.05
    ) -> float:
        return sum(0.01 for t, rms in self.audio if after <= t < before and rms > threshold)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for stream in self._streams:
            await stream.aclose()


async def wait_until(predicate: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def room():
    room = FakeRoom()
    yield room
    await room.aclose()


async def start_transport(
    room: FakeRoom, playout: PlayoutBuffer | None = None, **config: Any
) -> LiveKitTransport:
    room.join("user")
    return await LiveKitTransport.start(
        room, "user", playout or make_playout(), LiveKitTransportConfig(**config)
    )


# -- outbound media ---------------------------------------------------------------------------
async def test_clip_is_published_through_the_sources_in_sync(room: FakeRoom) -> None:
    transport = await start_transport(room)
    assert isinstance(transport, Transport)  # what the agent core talks to
    local = room.local_participant
    sources = sorted(p.source for p in local.track_publications.values())
    assert sources == sorted([rtc.TrackSource.SOURCE_MICROPHONE, rtc.TrackSource.SOURCE_CAMERA])
    receiver = Receiver(
        local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
    )
    try:
        await asyncio.sleep(0.2)
        idle_brightness = receiver.video[-1][1]
        audio, frames = tone_clip(1.0)
        scheduled = transport.playout.push(audio, frames)
        offsets = []
        while transport.playout.clock.now() < scheduled.end_s:
            await asyncio.sleep(0.05)
            offsets.append(transport.sync.last_video_time - transport.sync.last_audio_time)
        transport.playout.end_answer()  # as the session does: back to the idle face
        await asyncio.sleep(0.2)
        # the clip was heard and seen; idle silence and the idle face around it
        assert 0.7 < receiver.loud_seconds(0) < 1.3
        assert receiver.audio[-1][1] < 0.01
        assert max(b for _, b in receiver.video) > idle_brightness + 100
        assert abs(receiver.video[-1][1] - idle_brightness) < 10
        # the synchronizer's own view: audio and video within a frame or two of each other
        assert max(abs(o) for o in offsets[2:]) < 0.1
        # and the receiver's: the clip's sound and face begin together (lip-sync scale)
        heard = next(t for t, rms in receiver.audio if rms > 0.05)
        seen = next(t for t, b in receiver.video if b > idle_brightness + 100)
        assert abs(heard - seen) < 0.1
        assert transport.pump.audio_pushed > 60 and transport.pump.video_pushed > 30
    finally:
        await receiver.aclose()
        await transport.close()


async def test_interruption_clears_the_source_and_audio_stops(room: FakeRoom) -> None:
    # a long lead: without a clear-buffer, 300 ms of the cut answer would still play
    transport = await start_transport(room, lead_s=0.3, audio_queue_ms=500)
    local = room.local_participant
    receiver = Receiver(
        local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
    )
    try:
        transport.send_event({"type": "state", "state": "thinking", "turn": 1})
        audio, frames = tone_clip(3.0)
        scheduled = transport.playout.push(audio, frames)
        transport.send_event({"type": "clip", "turn": 1, "start": scheduled.start_s})
        await asyncio.sleep(0.6)
        assert transport.audio_source.queued_duration > 0.1  # the lead is really queued
        clears = transport.pump.clears
        transport.playout.flush()  # what Session.barge_in does, then it reports
        cut = time.monotonic()
        transport.send_event({"type": "barge_in", "turn": 1, "reason": "speech", "flushed": 2.4})
        transport.send_event({"type": "state", "state": "listening", "interrupted": True})
        await wait_until(lambda: transport.pump.clears > clears, within=1)
        await asyncio.sleep(0.5)
        # ~0.3 s would follow without the clear; one 20-ms frame in flight may
        assert receiver.loud_seconds(cut) < 0.15
        assert receiver.loud_seconds(0) > 0.3  # it did play before the cut
        finished = [e for e in local.events() if e["type"] == "playback_finished"]
        assert len(finished) == 1 and finished[0]["interrupted"] is True
        assert 0.3 < finished[0]["position"] < 1.2
    finally:
        await receiver.aclose()
        await transport.close()


async def test_playback_finished_waits_for_the_audio_not_the_last_push(room: FakeRoom) -> None:
    transport = await start_transport(room, lead_s=0.2, audio_queue_ms=400)
    local = room.local_participant
    try:
        audio, frames = tone_clip(0.52)
        scheduled = transport.playout.push(audio, frames)
        # a session that declares the answer over as soon as it is made (too early)
        transport.send_event({"type": "clip", "turn": 1, "start": scheduled.start_s})
        transport.send_event({"type": "directive", "speech": "hello there ", "motion": ""})
        transport.send_event({"type": "state", "state": "listening", "turn": 1})
        await wait_until(
            lambda: any(e["type"] == "playback_finished" for e in local.events()), within=3
        )
        # it came once the source had played the clip, not when the state event did
        assert transport.playout.clock.now() >= scheduled.end_s - 0.02
        # livekit counts a frame whose capture is still in flight as queued before it
        # takes its timestamp, so a reading taken now may be one frame low
        assert transport.sync.last_audio_time >= scheduled.end_s - 0.02 - 1e-6
        finished = next(e for e in local.events() if e["type"] == "playback_finished")
        assert finished == {
            "type": "playback_finished",
            "turn": 1,
            "interrupted": False,
            "position": pytest.approx(0.52, abs=0.01),
        }
        # the answer's words went out as one lk.transcription stream, closed as final
        await wait_until(lambda: local.writers and local.writers[0].closed_with is not None)
        writer = local.writers[0]
        assert writer.topic == TRANSCRIPTION_TOPIC and writer.chunks == ["hello there "]
        assert writer.attributes[ATTR_FINAL] == "false"
        assert writer.closed_with == {ATTR_FINAL: "true"}
    finally:
        await transport.close()


async def test_what_was_heard_goes_out_as_the_participants_transcript(room: FakeRoom) -> None:
    transport = await start_transport(room)
    room.publish_microphone(room.remote_participants["user"])
    local = room.local_participant
    try:
        transport.send_event({"type": "transcript", "source": "speech", "text": "where is the cafe",
                              "turn": 1})  # fmt: skip
        transport.send_event({"type": "transcript", "source": "text", "text": "typed", "turn": 2})
        await wait_until(lambda: local.writers and local.writers[0].closed_with is not None)
        writer = local.writers[0]
        # one final stream, sent on the participant's behalf, tied to their microphone track
        assert writer.topic == TRANSCRIPTION_TOPIC and writer.chunks == ["where is the cafe"]
        assert writer.sender_identity == "user" and writer.attributes[ATTR_FINAL] == "true"
        assert writer.attributes[ATTR_TRACK_ID] == "TR_user_0"
        await asyncio.sleep(0.1)
        assert len(local.writers) == 1  # a typed turn is the participant's own text already
        assert [e["type"] for e in local.events()] == ["transcript", "transcript"]
    finally:
        await transport.close()


def test_playback_tracker_never_hangs_and_reports_once() -> None:
    tracker = PlaybackTracker(grace_s=0.5)
    tracker.on_event({"type": "clip", "turn": 3, "start": 1.0}, end_s=2.0)
    tracker.on_event({"type": "state", "state": "listening"}, end_s=2.0)
    # the source stopped advancing at 1.5 s (a stuck or closed source)
    assert tracker.poll(now=2.0, played_s=1.5) is None
    assert tracker.poll(now=2.4, played_s=1.5) is None
    done = tracker.poll(now=2.5, played_s=1.5)
    assert done is not None and done["turn"] == 3 and not done["interrupted"]
    assert tracker.poll(now=2.6, played_s=1.5) is None  # once
    # an interruption is reported on the next poll, whatever the source says
    tracker.on_event({"type": "clip", "turn": 4, "start": 5.0}, end_s=6.0)
    assert tracker.poll(now=5.2, played_s=5.2) is None
    tracker.on_event({"type": "barge_in", "turn": 4}, end_s=5.2)
    done = tracker.poll(now=5.25, played_s=5.2)
    assert done is not None and done["interrupted"] and done["position"] == pytest.approx(0.2)
    # no answer, nothing to report
    tracker.on_event({"type": "state", "state": "listening"}, end_s=9.0)
    assert tracker.poll(now=10.0, played_s=10.0) is None


def test_playback_position_leaves_out_the_gaps_of_late_clips() -> None:
    tracker = PlaybackTracker(grace_s=0.5)
    # clip 0 plays 1.0-1.5; clip 1 came late: 0.1 s of silence, then 1.6-2.1
    tracker.on_event({"type": "clip", "turn": 1, "start": 1.0, "gap": 0.0}, end_s=1.5)
    tracker.on_event({"type": "clip", "turn": 1, "start": 1.6, "gap": 0.1}, end_s=2.1)
    tracker.on_event({"type": "state", "state": "listening"}, end_s=2.1)
    done = tracker.poll(now=2.1, played_s=2.1)
    assert done is not None and done["position"] == pytest.approx(1.0)
    # cut inside the gap: all of clip 0 was heard, none of clip 1; then 0.2 s into clip 1
    for cut, heard in ((1.55, 0.5), (1.8, 0.7)):
        tracker.on_event({"type": "clip", "turn": 2, "start": 1.0}, end_s=1.5)
        tracker.on_event({"type": "clip", "turn": 2, "start": 1.6, "gap": 0.1}, end_s=2.1)
        tracker.on_event({"type": "barge_in", "turn": 2}, end_s=cut)
        done = tracker.poll(now=cut, played_s=cut)
        assert done is not None and done["position"] == pytest.approx(heard)
    assert tracker.poll(now=10.0, played_s=10.0) is None


# -- A/V drift over minutes, faster than real time ----------------------------------------------
class VirtualClock(MediaClock):
    """A media clock whose sleeps return at once, waking up late by a random jitter."""

    def __init__(self, jitter_s: float, seed: int = 0) -> None:
        self.t = 0.0
        super().__init__(time_fn=lambda: self.t)
        self._rng = random.Random(seed)
        self.jitter_s = jitter_s

    async def sleep_until(self, media_time: float) -> None:
        target = media_time + self._rng.uniform(0.0, self.jitter_s)
        self.t = max(self.t, target)
        await asyncio.sleep(0)


class Stop(Exception):
    pass


@dataclass
class RecordingSink:
    """Records what the pump pushes (real rtc frames) and when, on the virtual clock."""

    clock: VirtualClock
    playout: PlayoutBuffer
    lead_s: float
    minutes: float
    audio: list[tuple[float, float]] = field(default_factory=list)  # (pushed at, timestamp)
    video: list[tuple[float, float]] = field(default_factory=list)
    clears: int = 0

    @property
    def last_audio_time(self) -> float:
        return self.audio[-1][1] if self.audio else 0.0

    async def push(self, frame: rtc.AudioFrame | rtc.VideoFrame, timestamp: float | None = None):
        assert timestamp is not None
        now = self.clock.now()
        if isinstance(frame, rtc.AudioFrame):
            assert frame.samples_per_channel == 960 and frame.sample_rate == OUT_RATE
            self.audio.append((now, timestamp))
            return
        self.video.append((now, timestamp))
        if len(self.video) % (FPS * 10) == 0:  # a 1-s answer clip every 10 s
            self.playout.end_answer()
            self.playout.push(*tone_clip(1.0))
        if timestamp >= self.minutes * 60:
            raise Stop

    async def clear_queue(self) -> None:
        self.clears += 1


async def test_no_av_drift_over_ten_minutes_of_pacing() -> None:
    lead, jitter = 0.06, 0.015
    clock = VirtualClock(jitter_s=jitter)
    playout = make_playout(clock, size=8)
    sink = RecordingSink(clock, playout, lead, minutes=10)
    pump = PlayoutPump(playout, sink, lead_s=lead)
    with pytest.raises(Stop):
        await pump.run()
    assert len(sink.video) == 10 * 60 * FPS + 1
    # video frames on time, each exactly once, whatever the jitter did before
    stamps = np.array([ts for _, ts in sink.video])
    np.testing.assert_allclose(np.diff(stamps), 1 / FPS, atol=1e-9)
    late = np.array([at - ts for at, ts in sink.video])
    assert late.min() >= 0 and late.max() <= jitter + 1e-9
    # audio: 20-ms frames, consecutive except where a clip landed inside the lead (a clear)
    audio_ts = np.array([ts for _, ts in sink.audio])
    steps = np.round(np.diff(audio_ts) / FRAME_S).astype(int)
    assert np.count_nonzero(steps != 1) == pump.clears == sink.clears
    assert pump.clears <= 60  # at most once per answer
    # A/V offset at every video frame: the audio frame due now was pushed `lead` earlier
    pushed = np.array([at for at, _ in sink.audio])
    idx = np.searchsorted(pushed, np.array([at for at, _ in sink.video]), side="right") - 1
    offsets = (audio_ts[idx] - lead) - stamps  # audio end ahead of the video frame start
    assert np.abs(offsets).max() <= 2 * FRAME_S + jitter
    first, last = offsets[: 60 * FPS], offsets[-60 * FPS :]
    assert abs(last.mean() - first.mean()) < 0.005  # no drift between minute 1 and minute 10


# -- inbound ---------------------------------------------------------------------------------
async def test_user_audio_arrives_as_16k_mono_float(room: FakeRoom) -> None:
    transport = await start_transport(room)
    mic = room.publish_microphone(room.remote_participants["user"])
    try:
        t = np.arange(OUT_RATE) / OUT_RATE
        tone = (0.4 * 32767 * np.sin(2 * np.pi * 500 * t)).astype(np.int16)
        for i in range(0, tone.size, 480):
            await mic.capture_frame(rtc.AudioFrame(tone[i : i + 480].tobytes(), OUT_RATE, 1, 480))
        chunks = []
        async for chunk in transport.audio_in():
            chunks.append(chunk)
            if sum(c.size for c in chunks) >= 16_000 + 8_000:
                break
        assert all(c.dtype == np.float32 and c.shape == (320,) for c in chunks)  # 20 ms
        pcm = np.concatenate(chunks)
        loud = pcm[np.abs(pcm) > 0.05]
        assert 0.8 * 16_000 < loud.size <= 16_000 + 800  # 1 s of tone at 16 kHz
        start = int(np.argmax(np.abs(pcm) > 0.05))
        window = pcm[start + 1_600 : start + 1_600 + 8_000]
        peak_hz = np.argmax(np.abs(np.fft.rfft(window))) * 16_000 / window.size
        assert abs(peak_hz - 500) < 10
    finally:
        await transport.close()


async def test_user_video_arrives_as_av_frames(room: FakeRoom) -> None:
    transport = await start_transport(room)
    camera = room.publish_camera(room.remote_participants["user"])
    try:
        rgb = np.zeros((SIZE, SIZE * 2, 3), dtype=np.uint8)
        rgb[..., 0] = 200
        frame = rtc.VideoFrame(SIZE * 2, SIZE, rtc.VideoBufferType.RGB24, rgb.tobytes())
        for _ in range(3):
            camera.capture_frame(frame)
            await asyncio.sleep(0.04)
        arrived, got = await asyncio.wait_for(anext(transport.video_in()), 5)
        assert arrived <= time.monotonic()
        assert (got.width, got.height) == (SIZE * 2, SIZE)
        assert abs(float(got.to_ndarray(format="rgb24")[..., 0].mean()) - 200) < 10
    finally:
        await transport.close()


async def test_typed_text_and_json_messages(room: FakeRoom) -> None:
    transport = await start_transport(room)
    room.join("someone-else")
    local = room.local_participant
    try:
        messages = transport.messages()
        room.send_chat("someone-else", "not the user we serve")
        room.send_chat("user", "hello avatar")
        assert await asyncio.wait_for(anext(messages), 2) == {
            "type": "text",
            "text": "hello avatar",
        }
        room.send_data("user", b'{"type": "text", "text": "typed"}')
        assert await asyncio.wait_for(anext(messages), 2) == {"type": "text", "text": "typed"}
        room.send_data("user", b"{not json")
        room.send_data("user", b"[1, 2]")
        room.send_data("user", b"x" * 20_000)
        room.send_data("user", b"[" * 15_000)  # deep nesting: RecursionError in json
        room.send_data("user", b'{"type": "text", "text": "other topic"}', topic="chat")
        room.send_data("someone-else", b'{"type": "text", "text": "not for us"}')
        room.send_chat("user", "y" * 20_000)
        await wait_until(lambda: len([e for e in local.events() if e["type"] == "error"]) == 5)
        errors = [e["message"] for e in local.events() if e["type"] == "error"]
        assert sorted(errors) == sorted(
            [
                "message is not JSON",
                "message must be a JSON object",
                "message is nested too deeply",
                "message too large",
                "message too large",
            ]
        )
        room.send_chat("user", "still here")
        assert await asyncio.wait_for(anext(messages), 2) == {"type": "text", "text": "still here"}
    finally:
        await transport.close()


async def test_user_leaving_ends_the_transport(room: FakeRoom) -> None:
    transport = await start_transport(room)
    room.publish_microphone(room.remote_participants["user"])
    transport.send_event({"type": "state", "state": "listening", "turn": 0})
    audio = transport.audio_in()
    await asyncio.wait_for(anext(audio), 5)
    room.leave("user")
    await asyncio.wait_for(transport.wait_closed(), 2)
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(audio), 2)
    await transport.close()
    await transport.close()  # idempotent
    assert room.local_participant.track_publications == {}  # unpublished
    assert CHAT_TOPIC not in room.text_handlers
    assert room.local_participant.events()[0] == {"type": "state", "state": "listening", "turn": 0}
