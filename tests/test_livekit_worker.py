"""The livekit-agents worker: its entrypoint runs a whole session against the room interface,
its load reporting follows the per-session cost, and its CLI is livekit-agents'."""

from __future__ import annotations

import asyncio
import pickle
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import ScriptedConductor, ToneCreator, speech_16k
from livekit import api, rtc
from test_livekit_transport import CHAT_TOPIC, FakeRoom, Receiver, wait_until

from agent.livekit_worker import (
    LOAD_THRESHOLD,
    MODEL_KEY,
    LiveKitWorkerConfig,
    build_server,
    entrypoint,
    livekit_main,
    load_resources,
    missing_livekit_settings,
    worker_load,
)
from signaling.server import ServerConfig


class FakeJobContext:
    """The `agents.JobContext` surface the entrypoint uses, over a FakeRoom."""

    def __init__(self, room: FakeRoom, userdata: dict[str, Any]) -> None:
        self.room = room
        self.proc = SimpleNamespace(userdata=userdata)
        self.connected_with: Any = None
        self.shutdown_reason: str | None = None

    async def connect(self, *, auto_subscribe: Any = None, **_: Any) -> None:
        self.connected_with = auto_subscribe

    async def wait_for_participant(self, *, identity: str | None = None) -> Any:
        while True:
            for participant in self.room.remote_participants.values():
                if identity is None or participant.identity == identity:
                    return participant
            await asyncio.sleep(0.01)

    def shutdown(self, reason: str = "") -> None:
        self.shutdown_reason = reason


def worker_config(**server: Any) -> LiveKitWorkerConfig:
    base = {"max_answer_clips": 3, "seed": 0, "threads": 2}
    base.update(server)
    return LiveKitWorkerConfig(server=ServerConfig(**base))


@pytest.fixture
async def job():
    config = worker_config()
    model = SimpleNamespace(conductor=ScriptedConductor(), creator=ToneCreator())
    resources = load_resources(config, model=model)
    room = FakeRoom()
    ctx = FakeJobContext(room, {MODEL_KEY: resources})
    task = asyncio.create_task(entrypoint(config, ctx))
    yield ctx, model, task
    if not task.done():
        room.leave("user")
        await asyncio.wait_for(task, 10)
    resources.shutdown()
    await room.aclose()


def events(room: FakeRoom, kind: str) -> list[dict[str, Any]]:
    return [e for e in room.local_participant.events() if e["type"] == kind]


async def test_dispatched_job_answers_typed_and_spoken_turns(job) -> None:
    ctx, model, task = job
    room: FakeRoom = ctx.room
    await asyncio.sleep(0.05)
    assert not room.local_participant.track_publications  # waits for the participant
    user = room.join("user")
    await wait_until(lambda: CHAT_TOPIC in room.text_handlers, within=5)
    local = room.local_participant
    receiver = Receiver(
        local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
    )
    try:
        # a typed turn over lk.chat
        room.send_chat("user", "hello avatar")
        await wait_until(lambda: events(room, "playback_finished"), within=15)
        states = [e["state"] for e in events(room, "state")]
        assert states == ["listening", "thinking", "speaking", "listening"]
        assert model.conductor.turns[0].text == "hello avatar"
        assert receiver.loud_seconds(0) > 0.5  # the answer was heard on the avatar's track
        finished = events(room, "playback_finished")[0]
        assert finished["interrupted"] is False and finished["turn"] == 1
        clips = events(room, "clip")
        assert finished["position"] == pytest.approx(sum(c["duration"] for c in clips), abs=0.05)
        writer = local.writers[0]  # the answer's words as an lk.transcription stream
        await wait_until(lambda: writer.closed_with is not None)
        assert "".join(writer.chunks).split() == model.conductor.reply.split()

        # a spoken turn: the user's microphone through rtc.AudioStream -> VAD -> Conductor
        mic = room.publish_microphone(user, rate=16_000)
        speech = (speech_16k("What is the weather like today?") * 32767).astype(np.int16)
        pcm = np.concatenate([speech, np.zeros(16_000, dtype=np.int16)])
        for i in range(0, pcm.size - 160, 160):
            await mic.capture_frame(rtc.AudioFrame(pcm[i : i + 160].tobytes(), 16_000, 1, 160))
        await wait_until(lambda: len(events(room, "playback_finished")) == 2, within=20)
        turn = model.conductor.turns[1]
        assert turn.audio is not None and turn.audio.shape[0] > 16_000 * 0.5
        assert turn.text == ""
        assert any(e["speaking"] for e in events(room, "vad"))
    finally:
        await receiver.aclose()
    room.leave("user")
    await asyncio.wait_for(task, 10)
    assert ctx.shutdown_reason == "participant left"
    assert local.track_publications == {}


async def test_barge_in_clears_and_reports_interrupted_playback(job) -> None:
    ctx, model, _task = job
    model.creator.work_s = 0.01
    room: FakeRoom = ctx.room
    room.join("user")
    await wait_until(lambda: CHAT_TOPIC in room.text_handlers, within=5)
    local = room.local_participant
    receiver = Receiver(
        local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
    )
    try:
        room.send_chat("user", "tell me a long story")
        await wait_until(lambda: events(room, "clip"), within=10)
        await asyncio.sleep(0.3)
        room.send_chat("user", "stop, another question")  # a new turn cuts the answer
        await wait_until(lambda: events(room, "barge_in"), within=5)
        await wait_until(lambda: events(room, "playback_finished"), within=5)
        first = events(room, "playback_finished")[0]
        assert first["turn"] == 1 and first["interrupted"] is True
        await wait_until(lambda: len(events(room, "playback_finished")) == 2, within=15)
        second = events(room, "playback_finished")[1]
        assert second["turn"] == 2 and second["interrupted"] is False
        assert first["position"] < second["position"]  # cut short: turn 1 played less
        assert len(local.writers) == 2 and all(w.closed_with for w in local.writers)
    finally:
        await receiver.aclose()


async def test_spoken_barge_in_stops_the_avatar(job) -> None:
    ctx, model, _task = job
    model.conductor.reply = " ".join(["word"] * 40)  # a long answer to interrupt
    room: FakeRoom = ctx.room
    user = room.join("user")
    await wait_until(lambda: CHAT_TOPIC in room.text_handlers, within=5)
    mic = room.publish_microphone(user, rate=16_000)
    local = room.local_participant
    receiver = Receiver(
        local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
    )
    try:
        room.send_chat("user", "talk for a while")
        await wait_until(lambda: any(e["state"] == "speaking" for e in events(room, "state")))
        await asyncio.sleep(0.5)
        speech = (speech_16k("Wait, stop please.") * 32767).astype(np.int16)
        for i in range(0, speech.size - 160, 160):
            await mic.capture_frame(rtc.AudioFrame(speech[i : i + 160].tobytes(), 16_000, 1, 160))
            if events(room, "barge_in"):
                break
        await wait_until(lambda: events(room, "barge_in"), within=5)
        assert events(room, "barge_in")[0]["reason"] == "speech"
        await wait_until(lambda: events(room, "playback_finished"), within=2)
        finished = events(room, "playback_finished")[0]
        assert finished["turn"] == 1 and finished["interrupted"] is True
        stopped = time.monotonic()
        await asyncio.sleep(0.3)
        # the cut answer's tone is gone; the next answer (to "wait, stop please") cannot
        # start before the VAD's hangover has passed, so this window is the cut one's
        assert receiver.loud_seconds(stopped, stopped + 0.2) < 0.05
    finally:
        await receiver.aclose()


async def test_model_error_ends_the_job_with_a_reason(job) -> None:
    ctx, model, task = job
    model.creator.fail_at = 0
    room: FakeRoom = ctx.room
    room.join("user")
    await wait_until(lambda: CHAT_TOPIC in room.text_handlers, within=5)
    room.send_chat("user", "break please")
    await asyncio.wait_for(task, 10)
    assert ctx.shutdown_reason == "session error"
    assert any(e["fatal"] for e in events(room, "error"))


# -- load reporting and the CLI ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("cores", "cost", "expected"), [(2, 1.0, 2), (16, 1.0, 16), (16, 3.0, 5), (1, 2.0, 1)]
)
def test_max_jobs_follow_the_per_session_cost(cores: int, cost: float, expected: int) -> None:
    assert LiveKitWorkerConfig(cpu_count=cores, session_cores=cost).max_jobs() == expected


def test_load_reporting_fills_at_max_jobs() -> None:
    server = build_server(LiveKitWorkerConfig(cpu_count=4, session_cores=1.0))
    loads = [server.load_fnc(SimpleNamespace(active_jobs=[None] * n)) for n in range(6)]
    assert loads == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    # livekit-agents takes a job while load < threshold: 4 sessions, not a 5th
    assert [load < LOAD_THRESHOLD for load in loads] == [True] * 4 + [False] * 2
    assert worker_load(SimpleNamespace(active_jobs=[1, 2]), max_jobs=2) == 1.0
    # job processes get the prewarm function and config by pickling
    assert pickle.loads(pickle.dumps(server.setup_fnc)).args == server.setup_fnc.args


def test_missing_livekit_settings() -> None:
    env = {"LIVEKIT_URL": "ws://x:7880", "LIVEKIT_API_KEY": "k"}
    assert missing_livekit_settings(["start"], env) == ["LIVEKIT_API_SECRET"]
    assert missing_livekit_settings(["start", "--api-secret", "s"], env) == []
    assert missing_livekit_settings(["start", "--api-secret=s"], {}) == [
        "LIVEKIT_URL",
        "LIVEKIT_API_KEY",
    ]


def test_cli_modes_come_from_livekit_agents(capsys, monkeypatch) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        livekit_main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(mode in out for mode in ("dev", "start", "connect"))
    with pytest.raises(SystemExit, match="set LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET"):
        livekit_main(["connect", "--room", "r"])


def test_token_subcommand_prints_a_verifiable_token(capsys, monkeypatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_KEY", "devkey")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "secret-secret-secret-secret-secret-32")
    livekit_main(["token", "--room", "demo", "--identity", "ann", "--agent-name", "mavid"])
    token = capsys.readouterr().out.strip()
    claims = api.TokenVerifier().verify(token)
    assert claims.identity == "ann" and claims.video.room == "demo"
    assert claims.room_config.agents[0].agent_name == "mavid"


async def test_real_model_answers_in_a_room(avatar_model) -> None:
    """The embedded mavid-tiny model, end to end through the LiveKit sources."""
    config = worker_config(max_answer_clips=2)
    resources = load_resources(config, model=avatar_model)
    room = FakeRoom()
    ctx = FakeJobContext(room, {MODEL_KEY: resources})
    task = asyncio.create_task(entrypoint(config, ctx))
    try:
        room.join("user")
        await wait_until(lambda: CHAT_TOPIC in room.text_handlers, within=10)
        local = room.local_participant
        receiver = Receiver(
            local.track(rtc.TrackKind.KIND_AUDIO), local.track(rtc.TrackKind.KIND_VIDEO)
        )
        try:
            room.send_chat("user", "hello, who are you?")
            await wait_until(lambda: events(room, "playback_finished"), within=60)
            clips = events(room, "clip")
            assert 1 <= len(clips) <= 2
            finished = events(room, "playback_finished")[0]
            assert finished["interrupted"] is False
            assert finished["position"] == pytest.approx(
                sum(c["duration"] for c in clips), abs=0.05
            )
            spec = avatar_model.creator.spec
            assert receiver.video_size == (spec.width, spec.height)
            faces = {round(b, 1) for _, b in receiver.video}
            assert len(faces) > 3  # a moving face, not a frozen frame
        finally:
            await receiver.aclose()
    finally:
        room.leave("user")
        await asyncio.wait_for(task, 15)
        resources.shutdown()
        await room.aclose()
