"""WHIP (RFC 9725): POST creates the session resource, DELETE ends it, OPTIONS for CORS."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import loopback_config, running_server

from realtime.contrib.client import LoopbackPeer
from signaling.state import STATE


async def test_whip_post_then_delete_ends_the_session(tone_model) -> None:
    async with running_server(loopback_config(token="s3cret"), tone_model) as (url, app):
        registry = app[STATE].registry
        peer = LoopbackPeer(data_channel=False)  # a WHIP client opens no events channel
        try:
            location = await peer.connect_whip(url, token="s3cret")
            assert location.startswith("/whip/")
            running = registry.get(peer.session_id)
            assert running is not None and len(registry) == 1
            # the session works without events: media arrives at the peer
            for _ in range(100):
                if len(peer.received.audio) > 10:
                    break
                await asyncio.sleep(0.05)
            assert len(peer.received.audio) > 10
            async with aiohttp.ClientSession() as http:
                auth = {"Authorization": "Bearer s3cret"}
                async with http.delete(url.rstrip("/") + location) as r:
                    assert r.status == 401  # the resource is protected too
                async with http.delete(url.rstrip("/") + location, headers=auth) as r:
                    assert r.status == 200
                assert len(registry) == 0 and running.task.done()
                assert running.session.transport.pc.connectionState == "closed"
                async with http.delete(url.rstrip("/") + location, headers=auth) as r:
                    assert r.status == 404 and (await r.json())["error"] == "no such session"
        finally:
            await peer.close()


async def test_whip_options_answers_cors(tone_model) -> None:
    async with running_server(loopback_config(), tone_model) as (url, _app):
        async with aiohttp.ClientSession() as http:
            for path in ("whip", "whip/abc"):
                async with http.options(url + path) as r:
                    assert r.status == 204
                    assert r.headers["Access-Control-Allow-Origin"] == "*"
                    assert "POST" in r.headers["Access-Control-Allow-Methods"]
                    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
                    assert r.headers["Accept-Post"] == "application/sdp"
