"""`POST /offer`: JSON offer in, JSON answer out (the browser client's way in)."""

from __future__ import annotations

import logging

from aiohttp import web

from agent.session import Session
from signaling.limits import check_token, json_object, read_body, service_unavailable
from signaling.peers import BadOffer, start_session
from signaling.registry import Full
from signaling.state import STATE, AppState

logger = logging.getLogger(__name__)


def parse_offer(text: str) -> str:
    """The SDP of a `{"sdp": ..., "type": "offer"}` body; 400 otherwise."""
    data = json_object(text)
    if data.get("type") != "offer":
        raise web.HTTPBadRequest(text='"type" must be "offer"')
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise web.HTTPBadRequest(text='"sdp" must be a non-empty string')
    return sdp


async def accept_offer(state: AppState, sdp: str) -> tuple[Session, str]:
    """Reserve a session slot and answer the offer: 503 when full, 400 for a bad SDP."""
    try:
        state.registry.reserve()
    except Full:
        raise service_unavailable() from None
    try:
        return await start_session(state, sdp)
    except BadOffer as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


async def handle_offer(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_token(request, state.config.token)
    sdp = parse_offer(await read_body(request, "application/json"))
    session, answer = await accept_offer(state, sdp)
    return web.json_response({"sdp": answer, "type": "answer", "session_id": session.id})
