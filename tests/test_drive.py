"""Driving a live session over HTTP: say, interrupt, server-sent events, and the errors."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import ScriptedTransport, loopback_config, running_server
from hypothesis import given, settings
from hypothesis import strategies as st
from test_avatar_agent import load_example

from agent.session import Session
from realtime.clock import MediaClock
from realtime.contrib.client import LoopbackPeer
from realtime.playout import PlayoutBuffer, PlayoutConfig
from signaling.drive import parse_say
from signaling.state import STATE

LOUD = 0.05
AUTH = {"Authorization": "Bearer s3cret"}


async def read_sse(response: aiohttp.ClientResponse, into: list[dict[str, Any]]) -> None:
    """Parse server-sent events until the stream ends; checks `event:` matches the JSON."""
    kind = None
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            event = json.loads(line[5:])
            assert event["type"] == kind
            into.append(event)


async def wait_until(predicate, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_say_interrupt_and_events_over_http(tone_model) -> None:
    cfg = loopback_config(token="s3cret", max_answer_clips=10)
    async with running_server(cfg, tone_model) as (url, _app):
        peer = LoopbackPeer(send_video=False)
        try:
            await peer.connect(url, token="s3cret")
            await peer.wait_channel_open()
            base = f"{url}sessions/{peer.session_id}"
            async with aiohttp.ClientSession(headers=AUTH) as http:
                streams = [await http.get(base + "/events") for _ in range(2)]
                assert all(s.status == 200 for s in streams)
                assert streams[0].content_type == "text/event-stream"
                seen: list[list[dict[str, Any]]] = [[], []]
                readers = [
                    asyncio.create_task(read_sse(s, into))
                    for s, into in zip(streams, seen, strict=True)
                ]
                await asyncio.sleep(0.2)  # the listeners are subscribed
                long = " ".join(f"word{i}" for i in range(30))
                t_say = time.monotonic()
                async with http.post(base + "/say", json={"speech": long, "motion": "nod"}) as r:
                    assert r.status == 200
                    body = await r.json()
                assert body == {"session_id": peer.session_id, "turn": 1}
                await peer.wait_event(lambda e: e["type"] == "state" and e["state"] == "speaking")
                await wait_until(
                    lambda: sum(rms > LOUD for t, rms in peer.received.audio if t > t_say) >= 10
                )
                assert tone_model.conductor.turns == []  # the Conductor was bypassed
                async with http.post(base + "/interrupt") as r:
                    cut = await r.json()
                t_cut = time.monotonic()
                assert cut["interrupted"] and cut["turn"] == 1 and cut["flushed"] > 0
                async with http.post(base + "/interrupt") as r:
                    assert (await r.json())["interrupted"] is False
                await asyncio.sleep(0.6)
                assert not [t for t, rms in peer.received.audio if t > t_cut + 0.3 and rms > LOUD]
                # the session ends: so do both event streams
                await peer.close()
                await asyncio.wait_for(asyncio.gather(*readers), 10)
                for s in streams:
                    s.release()
            for events in seen:
                kinds = [e["type"] for e in events]
                states = [e["state"] for e in events if e["type"] == "state"]
                assert states == ["thinking", "speaking", "listening"]
                assert kinds.index("directive") < kinds.index("clip")
                assert kinds.index("clip") < kinds.index("barge_in")
                assert events[kinds.index("directive")]["speech"] == long
                assert events[kinds.index("directive")]["motion"] == "nod"
            assert seen[0] == seen[1]  # every listener gets every event, in order
            # the peer got the same events on its data channel
            assert [e for e in peer.events() if e["type"] == "barge_in"] == [
                e for e in seen[0] if e["type"] == "barge_in"
            ]
        finally:
            await peer.close()


async def test_drive_example_script(tone_model, capsys) -> None:
    example = load_example("drive_with_say")
    async with running_server(loopback_config(token="s3cret"), tone_model) as (url, _app):
        peer = LoopbackPeer(send_video=False)
        try:
            await peer.connect(url, token="s3cret")
            await peer.wait_channel_open()
            await example.drive(url, peer.session_id, ["Hello there."], "s3cret", pause_s=0.8)
            said = [e["speech"] for e in peer.events("directive")]
            assert said == ["Hello there."]
            assert any(rms > LOUD for _, rms in peer.received.audio)
        finally:
            await peer.close()
    out = capsys.readouterr().out
    assert "say: 200" in out and "interrupt: 200" in out and "'type': 'clip'" in out


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{nope", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"[1]", {"Content-Type": "application/json"}, 400, "JSON object"),
        (b'{"speech": ""}', {"Content-Type": "application/json"}, 400, "non-empty"),
        (b'{"speech": 5}', {"Content-Type": "application/json"}, 400, "non-empty"),
        (b'{"speech": "hi", "motion": 1}', {"Content-Type": "application/json"}, 400, "motion"),
        (b'{"speech": "hi", "volume": 11}', {"Content-Type": "application/json"}, 400, "volume"),
        (b'{"speech": "' + b"x" * 3000 + b'"}', {"Content-Type": "application/json"}, 400, "2000"),
        # nested past json's recursion limit, yet under the 64 KB body limit
        (b"[" * 30_000 + b"]" * 30_000, {"Content-Type": "application/json"}, 400, "not valid"),
        (b'{"speech": "hi \\ud800"}', {"Content-Type": "application/json"}, 400, "Unicode"),
        (b'{"speech": "hi"}', {"Content-Type": "text/plain"}, 415, "application/json"),
        (b'{"speech": "' + b"x" * 70_000 + b'"}', {"Content-Type": "application/json"}, 413, ""),
    ],
)
async def test_say_refuses_bad_bodies(tone_model, body, headers, status, message) -> None:
    async with running_server(loopback_config(token="s3cret"), tone_model) as (url, app):
        peer = LoopbackPeer(send_video=False)
        try:
            await peer.connect(url, token="s3cret")
            async with aiohttp.ClientSession() as http:
                post = f"{url}sessions/{peer.session_id}/say"
                async with http.post(post, data=body, headers={**headers, **AUTH}) as r:
                    assert r.status == status
                    error = await r.json()
                assert error["status"] == status and message in error["error"]
            # nothing was lost: the session still runs and answers nothing
            running = app[STATE].registry.get(peer.session_id)
            assert running is not None and running.session.turns == 0
        finally:
            await peer.close()


async def test_unknown_unauthorized_and_ending_sessions(tone_model) -> None:
    async with running_server(loopback_config(token="s3cret"), tone_model) as (url, app):
        async with aiohttp.ClientSession() as http:
            for method, action in (("POST", "say"), ("POST", "interrupt"), ("GET", "events")):
                path = f"{url}sessions/nope/{action}"
                async with http.request(method, path, json={"speech": "hi"}) as r:
                    assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
                async with http.request(method, path, json={"speech": "hi"}, headers=AUTH) as r:
                    assert r.status == 404 and (await r.json())["error"] == "no such session"
            # a session whose transport takes its time to close: it is ending, still listed
            state = app[STATE]
            release = asyncio.Event()

            class SlowClose(ScriptedTransport):
                async def close(self) -> None:
                    await release.wait()
                    await super().close()

            stream = tone_model.creator.new_stream()
            session = Session(
                "ending",
                SlowClose(),
                PlayoutBuffer(MediaClock(), stream.reference_frame(), PlayoutConfig()),
                conductor=tone_model.conductor,
                stream=stream,
                executor=state.executor,
                vad_executor=state.vad_executor,
            )
            state.registry.reserve()
            state.registry.add(session)
            transport = session.transport
            assert isinstance(transport, SlowClose)
            await wait_until(lambda: bool(transport.events))  # running: its first state is out
            transport.hang_up()  # the peer left; closing its transport takes a while
            await wait_until(lambda: session.ending)
            for method, action in (("POST", "say"), ("POST", "interrupt"), ("GET", "events")):
                path = f"{url}sessions/ending/{action}"
                async with http.request(method, path, json={"speech": "hi"}, headers=AUTH) as r:
                    assert r.status == 409 and (await r.json())["error"] == "the session is ending"
            release.set()
            await wait_until(lambda: state.registry.get("ending") is None)
            async with http.post(
                f"{url}sessions/ending/say", json={"speech": "hi"}, headers=AUTH
            ) as r:
                assert r.status == 404


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
SAY_LIKE = st.fixed_dictionaries({}, optional={"speech": JSON | st.text(), "motion": JSON})


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON, SAY_LIKE).map(json.dumps) | st.text())
def test_parse_say_accepts_only_valid_bodies(text: str) -> None:
    try:
        speech, motion = parse_say(text)
    except web.HTTPBadRequest as exc:
        assert exc.text  # every refusal says why
        return
    data = json.loads(text)
    assert speech == data["speech"] and speech.strip()
    assert motion == data.get("motion") and (motion is None or isinstance(motion, str))


async def test_event_streams_are_capped_and_end_with_the_server(tone_model) -> None:
    from signaling.drive import MAX_LISTENERS

    server = running_server(loopback_config(), tone_model)
    url, _app = await server.__aenter__()
    peer = LoopbackPeer(send_video=False)
    http = aiohttp.ClientSession()
    try:
        await peer.connect(url)
        events = f"{url}sessions/{peer.session_id}/events"
        streams = [await http.get(events) for _ in range(MAX_LISTENERS)]
        assert all(s.status == 200 for s in streams)
        async with http.get(events) as r:
            assert r.status == 429 and str(MAX_LISTENERS) in (await r.json())["error"]
        readers = [asyncio.create_task(read_sse(s, [])) for s in streams]
        # shutting the server down ends the sessions, and with them the open streams
        await asyncio.wait_for(server.__aexit__(None, None, None), 20)
        await asyncio.wait_for(asyncio.gather(*readers), 5)
    finally:
        await http.close()
        await peer.close()
