"""CORS: pages on other origins may call /offer, /whip, /sessions/* and load the client module,
and only the origins the config allows."""

from __future__ import annotations

import aiohttp
from conftest import loopback_config, running_server

from signaling.cors import allowed_origin

GOOD, BAD = "http://good.example:8000", "http://bad.example"


def test_allowed_origin() -> None:
    assert allowed_origin(["*"], None) == "*"
    assert allowed_origin([GOOD], GOOD) == GOOD
    assert allowed_origin([GOOD], BAD) is None
    assert allowed_origin([], GOOD) is None
    assert allowed_origin([GOOD], None) is None


async def test_only_allowed_origins_get_cors_headers(tone_model) -> None:
    cfg = loopback_config(cors_origins=[GOOD], token="t")
    async with running_server(cfg, tone_model) as (url, _app):
        async with aiohttp.ClientSession() as http:
            for path in ("offer", "whip", "mavid-client.js", "sessions/x/say", "sessions/x/events"):
                preflight = {"Origin": GOOD, "Access-Control-Request-Method": "POST"}
                async with http.options(url + path, headers=preflight) as r:
                    assert r.status == 204, path
                    assert r.headers["Access-Control-Allow-Origin"] == GOOD
                    assert "POST" in r.headers["Access-Control-Allow-Methods"]
                    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
                    assert r.headers["Vary"] == "Origin"
                async with http.options(url + path, headers={"Origin": BAD}) as r:
                    assert "Access-Control-Allow-Origin" not in r.headers
            async with http.get(url + "mavid-client.js", headers={"Origin": GOOD}) as r:
                assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == GOOD
            # errors carry the header too, so the page can read why it was refused
            async with http.post(url + "offer", json={}, headers={"Origin": GOOD}) as r:
                assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == GOOD
            # our own endpoints for our own page get no CORS headers
            async with http.get(url + "healthz", headers={"Origin": GOOD}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers


async def test_any_origin_by_default(tone_model) -> None:
    async with running_server(loopback_config(), tone_model) as (url, _app):
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "mavid-client.js", headers={"Origin": BAD}) as r:
                assert r.headers["Access-Control-Allow-Origin"] == "*"
