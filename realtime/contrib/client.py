"""An aiortc client peer that talks to the server like a browser would (tests, benchmarks).

It sends scripted speech (then silence) and a moving test pattern, opens the `events` data
channel, and records everything that comes back with arrival times: the avatar's audio level
per 20-ms frame, a hash per video frame, and the events.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000
FRAME = 960  # 20 ms
SPEECH_LEVEL = 0.02  # |sample| above this counts as speech when timing the script


class ScriptedAudioTrack(MediaStreamTrack):
    """48-kHz mono: queued utterances, silence in between, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: list[np.ndarray] = []
        self._current: np.ndarray | None = None
        self._pos = 0
        self._start: float | None = None
        self._k = 0
        # per utterance: monotonic time its first / last speech sample went out
        self.onsets: list[float] = []
        self.offsets: list[float] = []
        self._marks: tuple[int, int] = (0, 0)

    def say(self, audio: np.ndarray, sample_rate: int) -> None:
        """Queue (N,) float32 audio; it is resampled to 48 kHz with av."""
        if sample_rate != RATE:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            frame = av.AudioFrame.from_ndarray(
                np.asarray(audio, np.float32)[None, :], format="flt", layout="mono"
            )
            frame.sample_rate = sample_rate
            out = resampler.resample(frame) + resampler.resample(None)
            audio = np.concatenate([f.to_ndarray().reshape(-1) for f in out])
        self._queue.append(np.asarray(audio, np.float32))

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._k * FRAME / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if self._current is None and self._queue:
            self._current, self._pos = self._queue.pop(0), 0
            loud = np.flatnonzero(np.abs(self._current) > SPEECH_LEVEL)
            self._marks = (int(loud[0]), int(loud[-1])) if loud.size else (0, 0)
        chunk = np.zeros(FRAME, np.float32)
        if self._current is not None:
            piece = self._current[self._pos : self._pos + FRAME]
            chunk[: piece.shape[0]] = piece
            lo, hi = self._pos, self._pos + FRAME
            now = time.monotonic()
            if lo <= self._marks[0] < hi:
                self.onsets.append(now + (self._marks[0] - lo) / RATE)
            if lo <= self._marks[1] < hi:
                self.offsets.append(now + (self._marks[1] - lo) / RATE)
            self._pos = hi
            if self._pos >= self._current.shape[0]:
                self._current = None
        pcm = (np.clip(chunk, -1, 1) * 32767).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._k * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._k += 1
        return frame


class PatternVideoTrack(MediaStreamTrack):
    """A small moving gradient at 10 fps: a camera that costs nothing."""

    kind = "video"

    def __init__(self, size: int = 64, fps: int = 10) -> None:
        super().__init__()
        self._size, self._fps, self._n = size, fps, 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._n / self._fps - time.monotonic()))
        ramp = (np.arange(self._size, dtype=np.uint16) * 4 + self._n * 8) % 256
        rgb = np.broadcast_to(ramp.astype(np.uint8)[None, :, None], (self._size, self._size, 3))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self._n * 90_000 // self._fps
        frame.time_base = fractions.Fraction(1, 90_000)
        self._n += 1
        return frame


@dataclass
class Received:
    audio: list[tuple[float, float]] = field(default_factory=list)  # (arrival, rms)
    video: list[tuple[float, int]] = field(default_factory=list)  # (arrival, frame hash)
    thumbs: list[np.ndarray] = field(default_factory=list)  # (32, 32) gray, one per frame
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)


class LoopbackPeer:
    """Connect with `await peer.connect(url)`; speak with `peer.say(...)`; `await peer.close()`."""

    def __init__(self, *, send_video: bool = True, data_channel: bool = True) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = ScriptedAudioTrack()
        self.camera = PatternVideoTrack() if send_video else None
        self.received = Received()
        self.session_id: str | None = None
        self._readers: list[asyncio.Task] = []
        self.pc.addTrack(self.mic)
        if self.camera is not None:
            self.pc.addTrack(self.camera)
        else:
            self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("events") if data_channel else None
        if self.channel is not None:
            self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)

    def _on_message(self, message: str | bytes) -> None:
        self.received.events.append((time.monotonic(), json.loads(message)))

    def _on_track(self, track: MediaStreamTrack) -> None:
        reader = self._read_audio if track.kind == "audio" else self._read_video
        self._readers.append(asyncio.ensure_future(reader(track)))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().astype(np.float32) / 32768.0
                self.received.audio.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2)))))
        except MediaStreamError:
            pass

    async def _read_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                arrived = time.monotonic()
                rgb = frame.to_ndarray(format="rgb24")
                thumb = frame.reformat(width=32, height=32, format="gray").to_ndarray()
                self.received.thumbs.append(thumb.astype(np.float32))
                self.received.video.append((arrived, hash(rgb.tobytes())))
        except MediaStreamError:
            pass

    async def connect(self, base_url: str, *, token: str | None = None) -> dict[str, Any]:
        """Offer over `POST {base_url}offer` and apply the answer. Returns the JSON answer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())  # gathers all candidates
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http:
            async with http.post(base_url + "offer", json=offer, headers=headers) as response:
                body = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"offer refused: {response.status} {body}")
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        self.session_id = body["session_id"]
        return body

    async def connect_whip(self, base_url: str, *, token: str | None = None) -> str:
        """Offer over WHIP (`POST {base_url}whip`, application/sdp). Returns the Location."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                base_url + "whip", data=self.pc.localDescription.sdp, headers=headers
            ) as response:
                body = await response.text()
                if response.status != 201:
                    raise RuntimeError(f"WHIP offer refused: {response.status} {body}")
                location = response.headers["Location"]
        await self.pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
        self.session_id = location.rsplit("/", 1)[-1]
        return location

    async def wait_channel_open(self, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while self.channel is not None and self.channel.readyState != "open":
            if time.monotonic() > deadline:
                raise TimeoutError("events channel did not open")
            await asyncio.sleep(0.02)

    def say(self, audio: np.ndarray, sample_rate: int) -> None:
        self.mic.say(audio, sample_rate)

    def send(self, message: Mapping[str, Any]) -> None:
        assert self.channel is not None
        self.channel.send(json.dumps(message))

    def video_change(self, after: float, reference: np.ndarray, level: float = 4.0) -> float | None:
        """Arrival of the first frame after `after` whose thumbnail differs from `reference`
        by more than `level` (mean absolute difference, 0..255): codec noise stays below."""
        for (t, _), thumb in zip(self.received.video, self.received.thumbs, strict=True):
            if t >= after and float(np.abs(thumb - reference).mean()) > level:
                return t
        return None

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for _, e in self.received.events if kind is None or e["type"] == kind]

    async def wait_event(
        self, predicate: Any, within: float = 10.0, after: int = 0
    ) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for t, event in self.received.events[after:]:
                if predicate(event):
                    return t, event
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no matching event in {within} s; got {self.events()}")

    async def close(self) -> None:
        self.mic.stop()
        if self.camera is not None:
            self.camera.stop()
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
