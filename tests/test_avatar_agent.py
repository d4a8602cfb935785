"""The Python API (`agent.AvatarAgent`) over real aiortc peers, used as the README and
examples/embed_aiohttp.py show it."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection
from conftest import ScriptedTransport, ToneCreator, ToneModel

from agent import AvatarAgent, AvatarAgentConfig, SessionEnding
from realtime.aiortc_transport import pinned_host_addresses
from realtime.contrib.client import LoopbackPeer

LOUD = 0.05  # rms of a 20-ms frame: the tone is ~0.2, decoded silence ~0
EXAMPLES = Path(__file__).parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def loud_after(peer: LoopbackPeer, t: float) -> list[float]:
    return [ts for ts, rms in peer.received.audio if ts >= t and rms > LOUD]


async def wait_until(predicate, within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def call(agent: AvatarAgent, peer: LoopbackPeer) -> RTCPeerConnection:
    """The integrator's own signaling, in-process: offer from the peer, answer from `pc`."""
    await peer.pc.setLocalDescription(await peer.pc.createOffer())
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    await agent.attach_peer_connection(pc)
    await pc.setRemoteDescription(peer.pc.localDescription)
    await pc.setLocalDescription(await pc.createAnswer())
    await peer.pc.setRemoteDescription(pc.localDescription)
    return pc


class FaceCreator(ToneCreator):
    """The tone model, showing the reference face it is given (flat gray by default)."""

    def new_stream(self, reference_image=None, seed=None):
        stream = super().new_stream(reference_image, seed)
        if reference_image is not None:
            stream._face = reference_image
        return stream


async def test_embedded_in_an_aiohttp_app_greets_and_converses(tone_model) -> None:
    example = load_example("embed_aiohttp")
    app = example.make_app(tone_model, ice_host_addresses=["127.0.0.1"])
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    peer = LoopbackPeer(send_video=False)
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        answer = await peer.connect(url)
        assert answer["type"] == "answer" and answer["session_id"] in app[example.AGENTS]
        # the greeting: `say` bypasses the Conductor, same clips, same streaming
        _, directive = await peer.wait_event(lambda e: e["type"] == "directive")
        assert directive["speech"] == "Hello, nice to meet you."
        assert directive["motion"] == "smile and wave"
        t_clip, _ = await peer.wait_event(lambda e: e["type"] == "clip")
        await wait_until(lambda: len(loud_after(peer, t_clip - 0.5)) >= 10)
        assert tone_model.conductor.turns == []
        # then a normal conversation through the Conductor
        await peer.wait_event(lambda e: e["type"] == "state" and e["state"] == "listening", 15)
        n = len(peer.received.events)
        peer.send({"type": "text", "text": "what can you do"})
        await peer.wait_event(lambda e: e["type"] == "clip", 15, after=n)
        assert tone_model.conductor.turns[0].text == "what can you do"
        await peer.close()  # hanging up ends the agent; the app forgets it
        await wait_until(lambda: not app[example.AGENTS], 15)
    finally:
        await peer.close()
        await runner.cleanup()


async def test_two_agents_with_different_models_and_faces_side_by_side() -> None:
    models = [ToneModel(creator=FaceCreator()), ToneModel(creator=FaceCreator())]
    faces = [np.full((32, 32, 3), value, np.uint8) for value in (30, 220)]
    peers = [LoopbackPeer(send_video=False), LoopbackPeer(send_video=False)]
    with pinned_host_addresses(["127.0.0.1"]):
        async with (
            AvatarAgent(models[0], AvatarAgentConfig(reference_image=faces[0], seed=1)) as a,
            AvatarAgent(models[1], AvatarAgentConfig(reference_image=faces[1], seed=2)) as b,
        ):
            try:
                for agent, peer in zip((a, b), peers, strict=True):
                    await call(agent, peer)
                    await peer.wait_channel_open()
                assert a.session_id != b.session_id
                await wait_until(lambda: all(len(p.received.thumbs) > 3 for p in peers))
                dark, bright = (float(p.received.thumbs[-1].mean()) for p in peers)
                assert dark < 80 < 170 < bright  # each peer sees its own agent's face
                peers[0].send({"type": "text", "text": "only for the first"})
                await b.say("only for the second")
                await peers[0].wait_event(lambda e: e["type"] == "clip")
                await peers[1].wait_event(lambda e: e["type"] == "clip")
                assert [t.text for t in models[0].conductor.turns] == ["only for the first"]
                assert models[1].conductor.turns == []  # say bypassed b's Conductor
                said = [e["speech"] for e in peers[1].events("directive")]
                assert said == ["only for the second"]
                assert all(e.get("speech") != "only for the second" for e in peers[0].events())
            finally:
                for peer in peers:
                    await peer.close()


async def test_say_events_interrupt_and_close() -> None:
    model = ToneModel()
    peer = LoopbackPeer(send_video=False)
    with pinned_host_addresses(["127.0.0.1"]):
        agent = AvatarAgent(model)
        with pytest.raises(RuntimeError, match="attach"):
            await agent.say("too early")
        try:
            await call(agent, peer)
            spare = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            with pytest.raises(RuntimeError, match="already attached"):
                await agent.attach_peer_connection(spare)
            await spare.close()
            events = agent.events()
            with pytest.raises(ValueError, match="non-empty"):
                await agent.say("   ")
            with pytest.raises(ValueError, match="motion"):
                await agent.say("hi", motion=3)  # type: ignore[arg-type]
            long = " ".join(f"word{i}" for i in range(40))
            turn = await agent.say(long, motion="lean in")
            seen: list[dict] = []
            async for event in events:
                seen.append(event)
                if event["type"] == "state" and event["state"] == "speaking":
                    break
            kinds = [e["type"] for e in seen]
            assert kinds[0] == "state" and seen[0]["state"] == "thinking"
            assert seen[0]["source"] == "say" and seen[0]["turn"] == turn
            assert kinds.index("directive") < kinds.index("clip") < len(kinds) - 1
            await asyncio.sleep(0.6)
            assert agent.state == "speaking" and loud_after(peer, 0)
            report = await agent.interrupt()
            t_cut = time.monotonic()
            assert report is not None and report.reason == "interrupt" and report.turn == turn
            async for event in events:
                if event["type"] == "barge_in":
                    assert event["reason"] == "interrupt"
                if event["type"] == "state":
                    assert event["state"] == "listening" and event["interrupted"]
                    break
            assert await agent.interrupt() is None  # nothing left to cut
            await asyncio.sleep(0.5)  # audio in flight (jitter buffer) drains
            quiet_from = t_cut + 0.3
            assert not loud_after(peer, quiet_from)
        finally:
            await agent.aclose()
            await peer.close()
        remaining = [e async for e in events]  # the iterator ends with the session
        assert all(e["type"] != "clip" for e in remaining)
        with pytest.raises(SessionEnding):
            await agent.say("after the end")
        spare = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        with pytest.raises(RuntimeError, match="closed"):
            await agent.attach_peer_connection(spare)
        await spare.close()


async def test_attach_after_the_offer_is_refused() -> None:
    peer = LoopbackPeer(send_video=False)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        await pc.setRemoteDescription(peer.pc.localDescription)
        async with AvatarAgent(ToneModel()) as agent:
            with pytest.raises(RuntimeError, match="before setRemoteDescription"):
                await agent.attach_peer_connection(pc)
    finally:
        await pc.close()
        await peer.close()


async def test_a_failed_attach_can_be_retried_on_any_transport() -> None:
    async with AvatarAgent(ToneModel()) as agent:

        def broken(playout):
            raise OSError("the room is gone")

        with pytest.raises(OSError, match="room"):
            await agent.attach(broken)
        transport = ScriptedTransport()

        async def build(playout):  # e.g. LiveKitTransport.start(room, who, playout)
            return transport

        await agent.attach(build)
        await agent.say("over any transport")
        await wait_until(lambda: any(e["type"] == "clip" for _, e in transport.events))
    assert transport.close_calls == 1  # aclose closed the transport
