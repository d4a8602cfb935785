"""WHIP (RFC 9725): `POST /whip` with an SDP offer creates a session resource,
`DELETE /whip/{id}` ends it, `OPTIONS` answers CORS preflights (CORS headers: `signaling.cors`)."""

from __future__ import annotations

from aiohttp import web

from signaling.limits import check_token, read_body
from signaling.offer import accept_offer
from signaling.state import STATE


async def handle_whip_post(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_token(request, state.config.token)
    sdp = await read_body(request, "application/sdp")
    session, answer = await accept_offer(state, sdp)
    location = str(request.app.router["whip_resource"].url_for(session_id=session.id))
    return web.Response(
        status=201,
        text=answer,
        content_type="application/sdp",
        headers={"Location": location},
    )


async def handle_whip_delete(request: web.Request) -> web.Response:
    state = request.app[STATE]
    check_token(request, state.config.token)
    if not await state.registry.end(request.match_info["session_id"]):
        raise web.HTTPNotFound(text="no such session")
    return web.Response(status=200)


async def handle_options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Accept-Post": "application/sdp"})
