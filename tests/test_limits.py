"""Auth and limits on /offer and /whip: 401, 413, 415, 400, 503 (+ Retry-After), JSON bodies,
and nothing left allocated afterwards."""

from __future__ import annotations

import json

import aiohttp
import pytest
from conftest import loopback_config, running_server

from realtime.contrib.client import LoopbackPeer
from signaling.state import STATE

GOOD = {"Content-Type": "application/json", "Authorization": "Bearer tok"}


async def post(url: str, body: bytes | str, headers: dict[str, str]) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=body, headers=headers) as r:
            return r.status, await r.json(), dict(r.headers)


def assert_clean(app) -> None:
    registry = app[STATE].registry
    assert len(registry) == 0 and registry._reserved == 0


@pytest.mark.parametrize(
    ("path", "body", "headers", "status"),
    [
        ("offer", "{}", {"Content-Type": "application/json"}, 401),
        ("offer", "{}", {**GOOD, "Authorization": "Bearer nope"}, 401),
        ("offer", "{}", {**GOOD, "Authorization": "Basic tok"}, 401),
        ("offer", "{}", {**GOOD, "Content-Type": "text/plain"}, 415),
        ("offer", "x" * 70_000, GOOD, 413),
        ("offer", "{not json", GOOD, 400),
        ("offer", "[1, 2]", GOOD, 400),
        ("offer", '{"type": "answer", "sdp": "v=0"}', GOOD, 400),
        ("offer", '{"type": "offer", "sdp": 5}', GOOD, 400),
        ("offer", '{"type": "offer", "sdp": "garbage"}', GOOD, 400),
        ("offer", b"\xff\xfe\x00", GOOD, 400),
        ("offer", "[" * 30_000 + "]" * 30_000, GOOD, 400),  # past json's recursion limit
        ("offer", "", GOOD, 400),
        ("whip", "v=0", {"Authorization": "Bearer tok", "Content-Type": "application/json"}, 415),
        ("whip", "v=0", {"Content-Type": "application/sdp"}, 401),
        ("whip", "not sdp", {**GOOD, "Content-Type": "application/sdp"}, 400),
        ("whip", "s" * 70_000, {**GOOD, "Content-Type": "application/sdp"}, 413),
    ],
)
async def test_errors_are_json_and_leave_nothing(tone_model, path, body, headers, status) -> None:
    async with running_server(loopback_config(token="tok"), tone_model) as (url, app):
        got, payload, _ = await post(url + path, body, headers)
        assert got == status, payload
        assert payload["status"] == status and payload["error"]
        assert_clean(app)


async def test_offer_without_media_is_refused(tone_model) -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    async with running_server(loopback_config(), tone_model) as (url, app):
        got, payload, _ = await post(url + "offer", json.dumps({"type": "offer", "sdp": sdp}), GOOD)
        assert got == 400 and "no audio, video or data channel" in payload["error"]
        assert_clean(app)


async def test_session_cap_answers_503_with_retry_after(tone_model) -> None:
    cfg = loopback_config(max_sessions=1)
    async with running_server(cfg, tone_model) as (url, app):
        first, second = LoopbackPeer(), LoopbackPeer()
        try:
            await first.connect(url)
            with pytest.raises(RuntimeError, match="503"):
                await second.connect(url)
            offer = {"type": "offer", "sdp": second.pc.localDescription.sdp}
            got, _, headers = await post(url + "offer", json.dumps(offer), GOOD)
            assert got == 503 and headers["Retry-After"] == "5"
            assert len(app[STATE].registry) == 1 and app[STATE].registry._reserved == 0
        finally:
            await first.close()
            await second.close()


async def test_half_negotiable_offer_is_a_400_not_a_500(tone_model) -> None:
    """Found by the fuzzer: an offer whose data-channel m-line is gone fails in aiortc half way,
    and aiortc's own close() then raises; the answer must still be a clean 400."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    lines = pc.localDescription.sdp.split("\r\n")
    await pc.close()
    broken = "\r\n".join(line for line in lines if not line.startswith("m=application"))
    async with running_server(loopback_config(), tone_model) as (url, app):
        got, payload, _ = await post(url + "whip", broken, {"Content-Type": "application/sdp"})
        assert got == 400, payload
        assert_clean(app)


async def test_model_failure_at_session_start_is_a_json_500(tone_model) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no weights")

    tone_model.creator.new_stream = broken
    peer = LoopbackPeer()
    try:
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        offer = {"type": "offer", "sdp": peer.pc.localDescription.sdp}
        async with running_server(loopback_config(), tone_model) as (url, app):
            got, payload, _ = await post(url + "offer", json.dumps(offer), GOOD)
            assert got == 500 and payload == {"error": "internal error", "status": 500}
            assert_clean(app)
    finally:
        await peer.close()
