"""`POST /offer`: JSON offer in, JSON answer out (the browser client's way in)."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from signaling.limits import check_token, read_body, service_unavailable
from signaling.peers import BadOffer, start_session
from signaling.registry import Full
from signaling.state import STATE

logger = logging.getLogger(__name__)


def parse_offer(text: str) -> str:
    """The SDP of a `{"sdp": ..., "type": "offer"}` body; 400 otherwise."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # 64 KB of brackets nest past json's limit
        raise web.HTTPBadRequest(text="body is not valid JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    if data.get("type") != "offer":
        raise web.HTTPBadRequest(text='"type" must be "offer"')
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise web.HTTPBadRequest(text='"sdp" must be a non-empty string')
    return sdp


async def handle_offer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_token(request, state.config.token)
    sdp = parse_offer(await read_body(request, "application/json"))
    try:
        state.registry.reserve()
    except Full:
        raise service_unavailable() from None
    try:
        session, answer = await start_session(state, sdp)
    except BadOffer as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"sdp": answer, "type": "answer", "session_id": session.id})
