"""The aiortc transport: ICE pinning in one place, outbound tracks per offered kind, events."""

from __future__ import annotations

import aioice.ice
import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from realtime.aiortc_transport import AiortcTransport, pinned_host_addresses
from realtime.clock import MediaClock
from realtime.playout import PlayoutBuffer
from realtime.transport import Transport

REF = np.zeros((8, 8, 3), np.uint8)


def test_pinning_restricts_candidates_and_restores() -> None:
    original = aioice.ice.get_host_addresses
    with pinned_host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses is original
    with pinned_host_addresses([]):
        assert aioice.ice.get_host_addresses is original
    with pytest.raises(ValueError):
        with pinned_host_addresses(["not-an-ip"]):
            pass


async def offer_sdp(kinds: list[str], channel: bool) -> str:
    pc = RTCPeerConnection()
    for kind in kinds:
        pc.addTransceiver(kind)
    if channel:
        pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


@pytest.mark.parametrize("kinds", [["audio", "video"], ["audio"], []])
async def test_answer_sends_on_the_offered_kinds_only(kinds) -> None:
    with pinned_host_addresses(["127.0.0.1"]):
        pc = RTCPeerConnection()
        transport = AiortcTransport(pc, PlayoutBuffer(MediaClock(), REF))
        assert isinstance(transport, Transport)
        await pc.setRemoteDescription(RTCSessionDescription(await offer_sdp(kinds, True), "offer"))
        transport.attach_outbound()
        await pc.setLocalDescription(await pc.createAnswer())
        sdp = pc.localDescription.sdp
        assert "127.0.0.1" in sdp
        senders = sorted(s.track.kind for s in pc.getSenders() if s.track is not None)
        assert senders == sorted(kinds)
        await transport.close()
        assert pc.connectionState == "closed"
        assert transport.audio_track.readyState == "ended"
        await transport.wait_closed()  # returns: the transport knows it is closed
        assert [c async for c in transport.audio_in()] == []


async def test_events_before_the_channel_opens_are_kept_bounded() -> None:
    pc = RTCPeerConnection()
    transport = AiortcTransport(pc, PlayoutBuffer(MediaClock(), REF))
    for i in range(100):
        transport.send_event({"type": "state", "i": i})
    assert len(transport._backlog) == 32
    assert '"i":99' in transport._backlog[-1]
    await transport.close()


async def test_deeply_nested_message_is_refused_and_the_peer_stays(tone_model) -> None:
    from conftest import loopback_config, running_server

    from realtime.contrib.client import LoopbackPeer

    async with running_server(loopback_config(), tone_model) as (url, _app):
        peer = LoopbackPeer(send_video=False)
        try:
            await peer.connect(url)
            await peer.wait_channel_open()
            await peer.wait_event(lambda e: e["type"] == "state")
            # 16 KB of brackets: small, but deeper than json's recursion limit
            peer.channel.send("[" * 8000 + "]" * 8000)
            await peer.wait_event(lambda e: e["type"] == "error" and "nested" in e["message"])
            peer.send({"type": "text", "text": "still here?"})
            await peer.wait_event(lambda e: e["type"] == "transcript", within=10)
        finally:
            await peer.close()


async def test_a_peer_that_never_connects_frees_its_slot(tone_model) -> None:
    import asyncio

    import aiohttp
    from conftest import loopback_config, running_server

    from realtime.contrib.client import LoopbackPeer
    from signaling.state import STATE

    async with running_server(loopback_config(connect_timeout_s=1.0), tone_model) as (url, app):
        registry = app[STATE].registry
        connected = LoopbackPeer(send_video=False)
        gone = LoopbackPeer(send_video=False)
        try:
            await connected.connect(url)
            await connected.wait_channel_open()
            # posts its offer, never applies the answer: ICE never completes
            await gone.pc.setLocalDescription(await gone.pc.createOffer())
            offer = {"sdp": gone.pc.localDescription.sdp, "type": "offer"}
            async with aiohttp.ClientSession() as http:
                async with http.post(url + "offer", json=offer) as response:
                    assert response.status == 200
            await gone.close()
            assert len(registry) == 2
            for _ in range(100):
                if len(registry) == 1:
                    break
                await asyncio.sleep(0.05)
            assert len(registry) == 1  # the vanished one went; the connected one stays
            assert registry.get(connected.session_id) is not None
            assert app[STATE].metrics.registry.get_sample_value("mavid_sessions_active") == 1
        finally:
            await connected.close()


@pytest.mark.parametrize("codec", ["audio/PCMU", "audio/G722"])
async def test_speech_over_a_narrowband_codec_starts_a_turn(tone_model, codec) -> None:
    """8-kHz PCMU and 16-kHz G722 decode at their own rates; the resampler takes either."""
    from aiortc.rtcrtpsender import RTCRtpSender
    from conftest import loopback_config, running_server, speech_16k

    from realtime.contrib.client import LoopbackPeer

    async with running_server(loopback_config(), tone_model) as (url, _app):
        peer = LoopbackPeer(send_video=False)
        try:
            for transceiver in peer.pc.getTransceivers():
                if transceiver.kind == "audio":
                    codecs = RTCRtpSender.getCapabilities("audio").codecs
                    transceiver.setCodecPreferences([c for c in codecs if c.mimeType == codec])
            await peer.connect(url)
            await peer.wait_channel_open()
            await peer.wait_event(lambda e: e["type"] == "state")
            peer.say(np.clip(speech_16k("Hello there, how are you today?") * 4, -1, 1), 16_000)
            await peer.wait_event(lambda e: e.get("state") == "thinking", within=15)
            assert codec.split("/")[1] in peer.pc.remoteDescription.sdp
            assert "opus" not in peer.pc.remoteDescription.sdp.lower()  # negotiated alone
        finally:
            await peer.close()
