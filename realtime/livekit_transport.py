"""The LiveKit transport: a session's media and messages over a `livekit.rtc.Room`.

Inbound, the user's audio tracks are read with `rtc.AudioStream`, which resamples to 16 kHz
mono natively (livekit's resampler), and video with `rtc.VideoStream` (RGB24). Typed text
comes as LiveKit text streams on `lk.chat` (the LiveKit chat convention) or as JSON data
packets on `mavid.events` (the same objects the aiortc data channel carries).

Outbound, `PlayoutPump` reads the session's `PlayoutBuffer` on its media clock and pushes
20-ms audio frames and video frames through `rtc.AVSynchronizer` into an `rtc.AudioSource` /
`rtc.VideoSource`. Audio is pushed `lead_s` ahead of the clock (the source's queue holds it,
so frame k is heard at media time k * 20 ms); video is pushed at its own media time (the
video source has no queue). Both indices are derived from the one clock, never from counted
sleeps, so they cannot drift apart however long the session runs.

Events go out as JSON data packets on `mavid.events`; the avatar's speech (the speech
directives) also goes out as a text stream per answer on `lk.transcription`, closed when
that answer's audio has actually played out. What the agent heard the participant say (a
Conductor with hearing) goes out on `lk.transcription` on the participant's behalf. A
`playback_finished` event reports the same moment an answer's audio played out, or the
moment an interruption's clear-buffer took effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
import numpy as np
from livekit import rtc

from realtime.playout import AUDIO_FRAME_SAMPLES, PlayoutBuffer
from realtime.resample import IN_RATE, OUT_RATE
from realtime.transport import (
    MAX_MESSAGE_BYTES,
    PeerMessageError,
    drain,
    parse_peer_message,
    put_latest,
)

logger = logging.getLogger(__name__)

EVENTS_TOPIC = "mavid.events"  # data packets: our JSON events out, the peer's JSON messages in
CHAT_TOPIC = "lk.chat"  # text streams in: typed text (livekit-agents' TOPIC_CHAT)
TRANSCRIPTION_TOPIC = "lk.transcription"  # text streams out (livekit-agents' convention)
ATTR_SEGMENT_ID = "lk.segment_id"
ATTR_FINAL = "lk.transcription_final"
ATTR_TRACK_ID = "lk.transcribed_track_id"

FRAME_S = AUDIO_FRAME_SAMPLES / OUT_RATE  # 20 ms
_AUDIO_QUEUE = 250  # 5 s of 20-ms chunks; if the session lags further, the oldest go
_VIDEO_QUEUE = 4
_MESSAGE_QUEUE = 64
_OUTBOX = 256  # events waiting to be published; beyond this the oldest go


@dataclass(frozen=True)
class LiveKitTransportConfig:
    # Audio is pushed this far ahead of the media clock. The AudioSource's queue then holds
    # ~lead_s, which absorbs event-loop jitter; it is also the most audio an interruption
    # has to clear.
    lead_s: float = 0.06
    audio_queue_ms: int = 200  # AudioSource queue: > lead_s, so capture never blocks
    video_queue_ms: float = 200  # AVSynchronizer video queue: video is pushed on time
    max_lag_s: float = 0.5  # if the loop fell this far behind, jump ahead, don't burst
    # playback_finished is sent when the answer's last sample has left the source, or at
    # the latest this long after its media end time (it must never hang)
    finish_grace_s: float = 0.5
    in_sample_rate: int = IN_RATE


class AVSink(Protocol):
    """What `PlayoutPump` pushes into: `rtc.AVSynchronizer`'s surface."""

    async def push(
        self, frame: rtc.VideoFrame | rtc.AudioFrame, timestamp: float | None = None
    ) -> None: ...

    async def clear_queue(self) -> None: ...

    @property
    def last_audio_time(self) -> float: ...


def audio_frame_to_rtc(samples: np.ndarray) -> rtc.AudioFrame:
    """(960,) int16 mono at 48 kHz -> rtc.AudioFrame."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    return rtc.AudioFrame(samples.tobytes(), OUT_RATE, 1, samples.shape[0])


def video_frame_to_rtc(rgb: np.ndarray) -> rtc.VideoFrame:
    """(H, W, 3) uint8 RGB -> rtc.VideoFrame (RGB24; the source converts to I420)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGB24, rgb.tobytes())


class PlayoutPump:
    """Pushes the playout buffer's timeline into an `AVSink` on the buffer's media clock.

    Audio frame k (20 ms) is pushed at `k * 20 ms - lead_s` with timestamp `(k + 1) * 20 ms`
    (its end, as `AVSynchronizer.push` wants); video frame n at `n / fps` with timestamp
    `n / fps`. If the not-yet-played part of what was pushed no longer matches the buffer
    (a flush on barge-in, or a clip that landed on the idle line inside the lead), the sink's
    queues are cleared and pushing resumes from the clock's present: a clear-buffer always
    leaves the source holding exactly what the buffer says, never stale answer audio.
    """

    def __init__(
        self,
        playout: PlayoutBuffer,
        sink: AVSink,
        *,
        lead_s: float = 0.06,
        max_lag_s: float = 0.5,
        on_tick: Callable[[bool], None] | None = None,
    ) -> None:
        self.playout = playout
        self.sink = sink
        self.lead_s = lead_s
        self.max_lag_s = max_lag_s
        self.on_tick = on_tick  # called after each resync check; True if it cleared
        self.fps = playout.config.fps
        self.clears = 0
        self.jumps = 0
        self.audio_pushed = 0
        self.video_pushed = 0
        self._k = 0  # next audio frame
        self._n = 0  # next video frame
        self._ahead: deque[tuple[int, np.ndarray]] = deque()  # audio pushed, maybe unplayed

    @property
    def next_audio_frame(self) -> int:
        return self._k

    @property
    def next_video_frame(self) -> int:
        return self._n

    def _restart_at(self, now: float, keep_video: bool = False) -> None:
        self._k = int(now / FRAME_S)
        # video is pushed on time, never ahead: after a clear it just goes on
        self._n = max(self._n, int(now * self.fps)) if keep_video else int(now * self.fps)
        self._ahead.clear()

    def _timeline_changed(self, now: float) -> bool:
        while self._ahead and (self._ahead[0][0] + 1) * FRAME_S <= now:
            self._ahead.popleft()  # played
        for k, samples in self._ahead:
            if not np.array_equal(self.playout.audio_frame(k), samples):
                return True
        return False

    async def resync(self) -> bool:
        """Clear the sink and restart from now if the unplayed pushed audio is stale."""
        now = self.playout.clock.now()
        if not self._timeline_changed(now):
            return False
        await self.sink.clear_queue()
        self.clears += 1
        self._restart_at(now, keep_video=True)
        return True

    async def run(self) -> None:
        clock = self.playout.clock
        self._restart_at(clock.now())
        while True:
            t_audio = self._k * FRAME_S - self.lead_s
            t_video = self._n / self.fps
            await clock.sleep_until(min(t_audio, t_video))
            cleared = await self.resync()
            if self.on_tick is not None:
                self.on_tick(cleared)
            if cleared:
                continue
            now = clock.now()
            if now - min(t_audio + self.lead_s, t_video) > self.max_lag_s:
                self.jumps += 1
                self._restart_at(now)
                continue
            if t_video <= t_audio:
                n = self._n
                self._n += 1
                frame = video_frame_to_rtc(self.playout.video_frame(n))
                await self.sink.push(frame, n / self.fps)
                self.video_pushed += 1
            else:
                k = self._k
                self._k += 1
                samples = self.playout.audio_frame(k)  # (960,) int16
                self._ahead.append((k, samples))
                await self.sink.push(audio_frame_to_rtc(samples), (k + 1) * FRAME_S)
                self.audio_pushed += 1


@dataclass
class _Playback:
    """One answer as the peer hears it (media times on the session clock)."""

    turn: int
    start_s: float
    end_s: float | None = None  # known once the session says the answer is over
    deadline_s: float | None = None
    interrupted: bool = False
    # (clip start, idle gap before it): a clip that came late left silence on the line,
    # which is not part of what the answer said
    gaps: list[tuple[float, float]] = field(default_factory=list)

    def position(self, t: float) -> float:
        """Seconds of the answer's own audio heard by media time t (gaps left out)."""
        idle = sum(min(gap, max(0.0, t - (start - gap))) for start, gap in self.gaps)
        return max(0.0, t - self.start_s - idle)


class PlaybackTracker:
    """Says when an answer has really finished playing at the source, exactly once.

    The session's events mark an answer (its first "clip" event, then "state: listening",
    or "barge_in"); `poll` is called on every pump tick with how far audio has played out.
    A normal end is reported only when the audio source has played up to the answer's end
    (not when its last clip was merely pushed: the early case), and at the latest
    `grace_s` after that end on the media clock (the never case). An interruption is
    reported on the first tick after it, i.e. after the pump's clear-buffer. Its position is
    how much of the answer's own audio was heard, as livekit-agents means it: silence left
    on the line by a clip that came late is not counted.
    """

    def __init__(self, grace_s: float = 0.5) -> None:
        self.grace_s = grace_s
        self._current: _Playback | None = None

    @property
    def active(self) -> bool:
        return self._current is not None

    def on_event(self, event: Mapping[str, Any], end_s: float) -> None:
        kind = event.get("type")
        if kind == "clip":
            turn = int(event.get("turn", 0))
            start = float(event.get("start", 0.0))
            if self._current is None or self._current.turn != turn:
                self._current = _Playback(turn, start)
            elif float(event.get("gap", 0.0)) > 0:
                self._current.gaps.append((start, float(event["gap"])))
        elif self._current is None:
            return
        elif kind == "barge_in":
            self._current.interrupted = True
        elif kind == "state" and event.get("state") == "listening":
            if event.get("interrupted"):
                self._current.interrupted = True
            elif self._current.end_s is None:
                self._current.end_s = end_s
                self._current.deadline_s = end_s + self.grace_s
        elif kind == "error" and event.get("fatal"):
            self._current.interrupted = True

    def poll(self, now: float, played_s: float) -> dict[str, Any] | None:
        """The playback_finished event, if the current answer just finished."""
        current = self._current
        if current is None:
            return None
        if current.interrupted:
            position = current.position(min(played_s, now))
        elif current.end_s is not None and (
            played_s >= current.end_s - 1e-6 or now >= (current.deadline_s or 0.0)
        ):
            position = current.position(current.end_s)
        else:
            return None
        self._current = None
        return {
            "type": "playback_finished",
            "turn": current.turn,
            "interrupted": current.interrupted,
            "position": round(position, 3),
        }


class LiveKitTransport:
    """`realtime.transport.Transport` over a `livekit.rtc.Room`, for one remote participant.

    Build it with `await LiveKitTransport.start(room, identity, playout)`: it subscribes to
    that participant's tracks (those already there and those to come), publishes the
    avatar's audio and video tracks and starts pushing the playout buffer.
    """

    def __init__(
        self,
        room: rtc.Room,
        participant_identity: str,
        playout: PlayoutBuffer,
        config: LiveKitTransportConfig | None = None,
    ) -> None:
        self.room = room
        self.identity = participant_identity
        self.playout = playout
        self.config = config or LiveKitTransportConfig()
        self._audio: asyncio.Queue[np.ndarray | None] = asyncio.Queue(_AUDIO_QUEUE)
        self._video: asyncio.Queue[tuple[float, av.VideoFrame] | None] = asyncio.Queue(_VIDEO_QUEUE)
        self._messages: asyncio.Queue[Mapping[str, Any] | None] = asyncio.Queue(_MESSAGE_QUEUE)
        self._outbox: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(_OUTBOX)
        self._readers: dict[str, asyncio.Task] = {}  # track sid -> reader
        self._text_tasks: set[asyncio.Task] = set()
        self._pump_task: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._closed = asyncio.Event()
        self._closing = False
        self.tracker = PlaybackTracker(self.config.finish_grace_s)
        self.audio_source: rtc.AudioSource | None = None
        self.video_source: rtc.VideoSource | None = None
        self.sync: rtc.AVSynchronizer | None = None
        self.pump: PlayoutPump | None = None
        self.publications: list[Any] = []
        self.published_data = 0
        self._transcript: Any = None  # the open lk.transcription writer of the current answer
        self._user_audio_sid: str | None = None  # the participant's audio track, once subscribed

    # -- setup -----------------------------------------------------------------------------
    @classmethod
    async def start(
        cls,
        room: rtc.Room,
        participant_identity: str,
        playout: PlayoutBuffer,
        config: LiveKitTransportConfig | None = None,
    ) -> LiveKitTransport:
        transport = cls(room, participant_identity, playout, config)
        try:
            await transport._start()
        except BaseException:
            await transport.close()
            raise
        return transport

    async def _start(self) -> None:
        cfg = self.config
        room = self.room
        room.on("track_subscribed", self._on_track_subscribed)
        room.on("track_unsubscribed", self._on_track_unsubscribed)
        room.on("participant_disconnected", self._on_participant_disconnected)
        room.on("disconnected", self._on_room_disconnected)
        room.on("data_received", self._on_data)
        room.register_text_stream_handler(CHAT_TOPIC, self._on_text_stream)
        participant = room.remote_participants.get(self.identity)
        if participant is not None:  # tracks subscribed before we listened
            for publication in participant.track_publications.values():
                if publication.track is not None and publication.subscribed:
                    self._on_track_subscribed(publication.track, publication, participant)

        height, width, _ = self.playout.reference_frame.shape
        self.audio_source = rtc.AudioSource(OUT_RATE, 1, queue_size_ms=cfg.audio_queue_ms)
        self.video_source = rtc.VideoSource(width, height)
        self.sync = rtc.AVSynchronizer(
            audio_source=self.audio_source,
            video_source=self.video_source,
            video_fps=self.playout.config.fps,
            video_queue_size_ms=cfg.video_queue_ms,
        )
        audio_track = rtc.LocalAudioTrack.create_audio_track("avatar-audio", self.audio_source)
        video_track = rtc.LocalVideoTrack.create_video_track("avatar-video", self.video_source)
        local = room.local_participant
        for track, source in (
            (audio_track, rtc.TrackSource.SOURCE_MICROPHONE),
            (video_track, rtc.TrackSource.SOURCE_CAMERA),
        ):
            publication = await local.publish_track(track, rtc.TrackPublishOptions(source=source))
            self.publications.append(publication)
        self.pump = PlayoutPump(
            self.playout,
            self.sync,
            lead_s=cfg.lead_s,
            max_lag_s=cfg.max_lag_s,
            on_tick=self._on_tick,
        )
        self._pump_task = asyncio.create_task(self.pump.run(), name="livekit-pump")
        self._sender = asyncio.create_task(self._send_loop(), name="livekit-send")
        if not room.isconnected():
            self._mark_closed()

    # -- inbound ---------------------------------------------------------------------------
    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.TrackPublication, participant: rtc.Participant
    ) -> None:
        if participant.identity != self.identity or publication.sid in self._readers:
            return
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            reader = self._read_audio(track)
            self._user_audio_sid = publication.sid
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            reader = self._read_video(track)
        else:
            return
        task = asyncio.create_task(reader, name=f"livekit-read-{publication.sid}")
        self._readers[publication.sid] = task
        task.add_done_callback(lambda _: self._readers.pop(publication.sid, None))

    def _on_track_unsubscribed(
        self, track: rtc.Track, publication: rtc.TrackPublication, participant: rtc.Participant
    ) -> None:
        task = self._readers.pop(publication.sid, None)
        if task is not None:
            task.cancel()

    def _on_participant_disconnected(self, participant: rtc.Participant) -> None:
        if participant.identity == self.identity:
            self._mark_closed()

    def _on_room_disconnected(self, *_: Any) -> None:
        self._mark_closed()

    async def _read_audio(self, track: rtc.Track) -> None:
        # livekit's native resampler does 48 kHz (or whatever arrives) -> 16 kHz mono
        # 20-ms chunks, as the aiortc transport gives: one VAD call per chunk
        stream = rtc.AudioStream(
            track, sample_rate=self.config.in_sample_rate, num_channels=1, frame_size_ms=20
        )
        try:
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16)
                if pcm.size:
                    put_latest(self._audio, pcm.astype(np.float32) / 32768.0)
        finally:
            await stream.aclose()

    async def _read_video(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.RGB24)
        try:
            async for event in stream:
                frame = event.frame
                rgb = np.frombuffer(frame.data, dtype=np.uint8).reshape(
                    frame.height, frame.width, 3
                )
                put_latest(
                    self._video, (time.monotonic(), av.VideoFrame.from_ndarray(rgb, "rgb24"))
                )
        finally:
            await stream.aclose()

    def _on_data(self, packet: rtc.DataPacket) -> None:
        if packet.topic != EVENTS_TOPIC:
            return
        sender = packet.participant.identity if packet.participant is not None else None
        if sender != self.identity:
            return
        try:
            parsed = parse_peer_message(packet.data)
        except PeerMessageError as exc:
            self.send_event({"type": "error", "message": str(exc), "fatal": False})
            return
        self._offer_message(parsed)

    def _offer_message(self, message: Mapping[str, Any]) -> None:
        if self._messages.full():
            self.send_event({"type": "error", "message": "too many messages", "fatal": False})
            return
        self._messages.put_nowait(message)

    def _on_text_stream(self, reader: rtc.TextStreamReader, participant_identity: str) -> None:
        if participant_identity != self.identity or self._closed.is_set():
            return
        task = asyncio.create_task(self._read_text(reader))
        self._text_tasks.add(task)
        task.add_done_callback(self._text_tasks.discard)

    async def _read_text(self, reader: rtc.TextStreamReader) -> None:
        size = reader.info.size
        if size is not None and size > MAX_MESSAGE_BYTES:
            self.send_event({"type": "error", "message": "message too large", "fatal": False})
            return
        try:
            text = await reader.read_all()
        except Exception as exc:  # a stream cut mid-way loses that message only
            logger.warning("event=text_stream_failed error=%r", exc)
            return
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            self.send_event({"type": "error", "message": "message too large", "fatal": False})
            return
        self._offer_message({"type": "text", "text": text})

    # -- outbound events -------------------------------------------------------------------
    def _on_tick(self, cleared: bool) -> None:
        sync = self.sync
        if sync is None or not self.tracker.active:
            return
        done = self.tracker.poll(self.playout.clock.now(), sync.last_audio_time)
        if done is not None:
            self._queue(("data", done))
            self._queue(("transcript_end", None))

    def _queue(self, item: tuple[str, Any]) -> None:
        if self._closing:
            return
        put_latest(self._outbox, item)

    async def _send_loop(self) -> None:
        while (item := await self._outbox.get()) is not None:
            kind, payload = item
            try:
                if kind == "data":
                    body = json.dumps(payload, separators=(",", ":"))
                    await self.room.local_participant.publish_data(
                        body, reliable=True, topic=EVENTS_TOPIC
                    )
                    self.published_data += 1
                elif kind == "transcript":
                    await self._write_transcript(payload)
                elif kind == "transcript_end":
                    await self._end_transcript()
                elif kind == "heard":
                    await self._write_heard(payload)
            except Exception as exc:  # a failed send loses that event, not the session
                logger.warning("event=livekit_send_failed kind=%s error=%r", kind, exc)
        await self._end_transcript()

    async def _write_transcript(self, text: str) -> None:
        if self._transcript is None:
            attributes = {ATTR_FINAL: "false", ATTR_SEGMENT_ID: f"SG_{secrets.token_hex(6)}"}
            if self.publications:
                attributes[ATTR_TRACK_ID] = self.publications[0].sid
            self._transcript = await self.room.local_participant.stream_text(
                topic=TRANSCRIPTION_TOPIC, attributes=attributes
            )
        await self._transcript.write(text)

    async def _write_heard(self, text: str) -> None:
        """What the agent heard the participant say, as livekit-agents publishes a user's
        transcript: its own final stream on lk.transcription, sent on the participant's behalf
        and tied to their audio track, so LiveKit front ends show it as theirs."""
        attributes = {ATTR_FINAL: "true", ATTR_SEGMENT_ID: f"SG_{secrets.token_hex(6)}"}
        if self._user_audio_sid is not None:
            attributes[ATTR_TRACK_ID] = self._user_audio_sid
        writer = await self.room.local_participant.stream_text(
            topic=TRANSCRIPTION_TOPIC, attributes=attributes, sender_identity=self.identity
        )
        await writer.write(text)
        await writer.aclose()

    async def _end_transcript(self) -> None:
        writer, self._transcript = self._transcript, None
        if writer is not None:
            await writer.aclose(attributes={ATTR_FINAL: "true"})

    # -- Transport -------------------------------------------------------------------------
    def audio_in(self) -> AsyncIterator[np.ndarray]:
        return drain(self._audio)

    def video_in(self) -> AsyncIterator[tuple[float, av.VideoFrame]]:
        return drain(self._video)

    def messages(self) -> AsyncIterator[Mapping[str, Any]]:
        return drain(self._messages)

    def send_event(self, event: Mapping[str, Any]) -> None:
        self.tracker.on_event(event, self.playout.end_s)
        self._queue(("data", dict(event)))
        if event.get("type") == "directive" and event.get("speech"):
            self._queue(("transcript", str(event["speech"])))
        elif event.get("type") == "transcript" and event.get("source") == "speech":
            self._queue(("heard", str(event.get("text", ""))))

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _mark_closed(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for queue in (self._audio, self._video, self._messages):
            put_latest(queue, None)

    async def close(self) -> None:
        """Stop pushing, unpublish the avatar's tracks, stop reading. The room stays
        connected: it belongs to the caller (the livekit-agents job). Idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        room = self.room
        for event, handler in (
            ("track_subscribed", self._on_track_subscribed),
            ("track_unsubscribed", self._on_track_unsubscribed),
            ("participant_disconnected", self._on_participant_disconnected),
            ("disconnected", self._on_room_disconnected),
            ("data_received", self._on_data),
        ):
            with contextlib.suppress(Exception):
                room.off(event, handler)
        room.unregister_text_stream_handler(CHAT_TOPIC)
        sender = self._sender
        others = [*self._text_tasks, *self._readers.values()]
        if self._pump_task is not None:
            others.append(self._pump_task)
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        if sender is not None:  # flush what was queued (the last events), then stop
            put_latest(self._outbox, None)
            try:
                await asyncio.wait_for(sender, 2.0)
            except (TimeoutError, asyncio.CancelledError):
                sender.cancel()
        if self.sync is not None:
            await self.sync.aclose()
        if room.isconnected():
            for publication in self.publications:
                with contextlib.suppress(Exception):
                    await room.local_participant.unpublish_track(publication.sid)
        for source in (self.audio_source, self.video_source):
            if source is not None:
                await source.aclose()
        self._mark_closed()
