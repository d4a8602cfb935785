"""Driving a live session from a backend: `POST /sessions/{id}/say`,
`POST /sessions/{id}/interrupt`, `GET /sessions/{id}/events` (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from agent.session import Session, SessionEnding
from signaling.limits import check_token, json_object, read_body
from signaling.state import STATE

MAX_LISTENERS = 16  # SSE streams per session; each holds a bounded queue
_SAY_KEYS = {"speech", "motion"}


def _live_session(request: web.Request) -> Session:
    """The session named in the path: 401 without the token, 404 unknown, 409 ending."""
    state = request.app[STATE]
    check_token(request, state.config.token)
    running = state.registry.get(request.match_info["session_id"])
    if running is None:
        raise web.HTTPNotFound(text="no such session")
    if running.session.ending:
        raise web.HTTPConflict(text="the session is ending")
    return running.session


def parse_say(text: str) -> tuple[str, str | None]:
    """(speech, motion) of a `{"speech": ..., "motion": ...}` body; 400 otherwise."""
    data = json_object(text)
    unknown = set(data) - _SAY_KEYS
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown fields: {', '.join(sorted(unknown))[:200]}")
    speech, motion = data.get("speech"), data.get("motion")
    if not isinstance(speech, str) or not speech.strip():
        raise web.HTTPBadRequest(text='"speech" must be a non-empty string')
    if motion is not None and not isinstance(motion, str):
        raise web.HTTPBadRequest(text='"motion" must be a string or null')
    return speech, motion


async def handle_say(request: web.Request) -> web.Response:
    session = _live_session(request)
    speech, motion = parse_say(await read_body(request, "application/json"))
    try:
        turn = session.say(speech, motion)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    except SessionEnding:
        raise web.HTTPConflict(text="the session is ending") from None
    return web.json_response({"session_id": session.id, "turn": turn})


async def handle_interrupt(request: web.Request) -> web.Response:
    session = _live_session(request)
    report = session.interrupt()
    body: dict[str, Any] = {"session_id": session.id, "interrupted": report is not None}
    if report is not None:
        body.update(turn=report.turn, flushed=round(report.flushed_s, 3))
    return web.json_response(body)


async def handle_events(request: web.Request) -> web.StreamResponse:
    """One SSE message per session event (`event:` its type, `data:` its JSON); the stream
    ends when the session does. A listener that reads too slowly loses its oldest events and
    gets a `dropped` event saying how many."""
    session = _live_session(request)
    if len(session.events) >= MAX_LISTENERS:
        raise web.HTTPTooManyRequests(text=f"at most {MAX_LISTENERS} event streams per session")
    subscription = session.events.subscribe()
    async with sse_response(request) as response:

        async def pump() -> None:
            async for event in subscription:
                await response.send(json.dumps(event), event=str(event.get("type", "event")))
            response.stop_streaming()  # the session ended

        pumping = asyncio.create_task(pump())
        try:
            # returns when the pump stops streaming or the listener has gone (a keep-alive
            # ping failed), so a vanished listener does not hold its slot until the next event
            await response.wait()
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)
            subscription.close()
    return response
