"""The HTTP side over a real server: page, health, metrics, /offer, events and typed text."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from conftest import loopback_config, running_server

from realtime.contrib.client import LoopbackPeer


async def test_page_health_and_static(tone_model) -> None:
    async with running_server(loopback_config(), tone_model) as (url, _app):
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as r:
                page = await r.text()
                assert r.status == 200 and "client.js" in page and 'id="avatar"' in page
            async with http.get(url + "static/client.js") as r:
                assert r.status == 200 and 'from "/mavid-client.js"' in await r.text()
            async with http.get(url + "mavid-client.js") as r:
                assert r.status == 200 and r.content_type == "text/javascript"
                assert "export async function connect(" in await r.text()
            async with http.get(url + "healthz") as r:
                assert await r.json() == {"status": "ok", "sessions": 0, "max_sessions": 4}
            async with http.get(url + "nope") as r:
                assert r.status == 404 and (await r.json())["status"] == 404


async def test_offer_events_typed_text_and_metrics(tone_model) -> None:
    async with running_server(loopback_config(), tone_model) as (url, _app):
        peer = LoopbackPeer()
        try:
            answer = await peer.connect(url)
            assert answer["type"] == "answer" and "m=audio" in answer["sdp"]
            assert "a=candidate" in answer["sdp"] and "127.0.0.1" in answer["sdp"]
            await peer.wait_channel_open()
            await asyncio.sleep(1.0)  # let the camera's first frames arrive
            peer.send({"type": "text", "text": "hi there"})
            await peer.wait_event(lambda e: e["type"] == "state" and e["state"] == "speaking")
            await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "listening", 15, after=3
            )
            kinds = [e["type"] for e in peer.events()]
            assert kinds.index("transcript") < kinds.index("directive") < kinds.index("clip")
            assert tone_model.conductor.turns[0].text == "hi there"
            # the Conductor also saw the peer's camera (downscaled ring of recent frames)
            assert tone_model.conductor.turns[0].video
            peer.send({"type": "what"})
            await peer.wait_event(lambda e: e["type"] == "error" and not e["fatal"])
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "healthz") as r:
                    assert (await r.json())["sessions"] == 1
                async with http.get(url + "metrics") as r:
                    text = await r.text()
            assert r.headers["Content-Type"].startswith("text/plain")
            assert 'mavid_turns_total{source="text"} 1.0' in text
            assert "mavid_sessions_active 1.0" in text
            assert "mavid_clip_generation_seconds_count" in text
            assert "mavid_response_latency_seconds_count 1.0" in text
        finally:
            await peer.close()


async def test_serve_reports_url_and_stops_cleanly(tone_model) -> None:
    from signaling.server import serve

    urls: list[str] = []
    cfg = loopback_config()
    task = asyncio.create_task(serve(cfg, ready=urls.append, model=tone_model))
    for _ in range(200):
        if urls or task.done():
            break
        await asyncio.sleep(0.02)
    assert len(urls) == 1 and urls[0].startswith("http://127.0.0.1:")
    peer = LoopbackPeer()
    try:
        await peer.connect(urls[0])
        await peer.wait_channel_open()
        task.cancel()  # what SIGTERM does: every session ends, the port closes
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(100):
            if peer.pc.connectionState == "closed" or peer.channel.readyState == "closed":
                break
            await asyncio.sleep(0.05)
        assert peer.channel.readyState == "closed"
    finally:
        await peer.close()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(urls[0] + "healthz")


def test_bad_reference_image_is_a_clear_error(tone_model, tmp_path) -> None:
    from signaling.server import build_app

    bad = tmp_path / "face.png"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read reference image"):
        build_app(loopback_config(ref_image=str(bad)), tone_model)


def test_reference_image_is_resized_to_the_model(tone_model, tmp_path) -> None:
    from PIL import Image

    from signaling.server import build_app
    from signaling.state import STATE

    path = tmp_path / "face.png"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(path)
    app = build_app(loopback_config(ref_image=str(path)), tone_model)
    ref = app[STATE].reference_image
    assert ref.shape == (32, 32, 3) and tuple(ref[5, 5]) == (10, 200, 30)
    app[STATE].executor.shutdown()
    app[STATE].vad_executor.shutdown()
