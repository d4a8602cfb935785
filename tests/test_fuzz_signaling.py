"""Hypothesis feeds malformed SDP, JSON and data-channel messages: only 4xx answers (or a
session that is then ended), never a 5xx, and the server stays up."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from aiortc import RTCPeerConnection
from conftest import ToneModel, loopback_config, running_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.turns import TurnConfig, parse_text_message
from realtime.aiortc_transport import AiortcTransport
from realtime.clock import MediaClock
from realtime.playout import PlayoutBuffer

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _valid_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    """A server on its own loop in a thread (hypothesis tests are synchronous)."""
    loop = asyncio.new_event_loop()
    ready: dict[str, str] = {}
    started, stop = threading.Event(), asyncio.Event()

    async def main() -> None:
        ready["sdp"] = await _valid_offer()
        async with running_server(loopback_config(), ToneModel()) as (url, _app):
            ready["url"] = url
            started.set()
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert started.wait(30), "server did not start"
    yield ready["url"], ready["sdp"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


def request(url: str, body: bytes, content_type: str, method: str = "POST") -> tuple[int, bytes]:
    status, answer, _ = request_full(url, body, content_type, method)
    return status, answer


def request_full(
    url: str, body: bytes, content_type: str, method: str = "POST"
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def check(url: str, status: int, body: bytes) -> None:
    """4xx with a JSON error body; a 2xx means the input was valid after all: end it."""
    if status in (200, 201):
        session = json.loads(body)["session_id"] if status == 200 else None
        if session:
            assert request(f"{url}whip/{session}", b"", "text/plain", "DELETE")[0] == 200
        return
    assert 400 <= status < 500, (status, body[:200])
    assert json.loads(body)["status"] == status
    assert request(url + "healthz", b"", "text/plain", "GET")[0] == 200


def mutate(sdp: str, data: st.DataObject) -> str:
    lines = sdp.split("\r\n")
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "replace", "truncate", "dup"]))
        if action == "drop":
            del lines[i]
        elif action == "replace":
            lines[i] = data.draw(st.text(max_size=40))
        elif action == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, max(0, len(lines[i]) - 1)))]
        else:
            lines.insert(i, lines[i])
        if not lines:
            lines = [""]
    return "\r\n".join(lines)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@FUZZ
@given(data=st.data())
def test_fuzzed_offers(server, data) -> None:
    url, sdp = server
    sdp = mutate(sdp, data) if data.draw(st.booleans()) else data.draw(st.text(max_size=200))
    kind = data.draw(st.sampled_from(["offer", "answer", None, 3]))
    status, body = request(
        url + "offer", json.dumps({"type": kind, "sdp": sdp}).encode(), "application/json"
    )
    check(url, status, body)


@FUZZ
@given(body=json_values.map(json.dumps).map(str.encode) | st.binary(max_size=300))
def test_fuzzed_json(server, body) -> None:
    url, _ = server
    status, answer = request(url + "offer", body, "application/json")
    check(url, status, answer)


@FUZZ
@given(data=st.data())
def test_fuzzed_whip(server, data) -> None:
    url, sdp = server
    body = mutate(sdp, data).encode() if data.draw(st.booleans()) else data.draw(st.binary())
    status, answer, headers = request_full(url + "whip", body, "application/sdp")
    if status == 201:  # valid after all: end the session it made
        location = url.rstrip("/") + headers["Location"]
        assert request(location, b"", "text/plain", "DELETE")[0] == 200
        return
    check(url, status, answer)


@settings(max_examples=200, deadline=None)
@given(
    message=st.text(max_size=300)
    | st.binary(max_size=300)
    | json_values.map(json.dumps)
    | st.fixed_dictionaries({"type": st.just("text"), "text": json_values}).map(json.dumps)
)
def test_fuzzed_channel_messages(message) -> None:
    async def run() -> None:
        pc = RTCPeerConnection()
        playout = PlayoutBuffer(MediaClock(), ToneModel().creator.new_stream().reference_frame())
        transport = AiortcTransport(pc, playout)
        transport._on_message(message)  # what the events channel delivers
        queue = transport._messages
        while not queue.empty():
            parsed = queue.get_nowait()
            assert isinstance(parsed, dict)
            text, error = parse_text_message(parsed, TurnConfig())
            assert (text is None) != (error is None)
        await transport.close()

    asyncio.run(run())
