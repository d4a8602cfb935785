"""Auth and request limits shared by the endpoints that open sessions."""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

RETRY_AFTER_S = 5  # when the server is full: sessions last minutes, not milliseconds


def check_token(request: web.Request, token: str | None) -> None:
    """401 unless the request carries `Authorization: Bearer <token>` (when a token is set)."""
    if not token:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise web.HTTPUnauthorized(
            text="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


async def read_body(request: web.Request, content_type: str) -> str:
    """The request body as text: 415 on another content type, 413 over the app's size cap,
    400 if it is not UTF-8 or empty."""
    if request.content_type != content_type:
        raise web.HTTPUnsupportedMediaType(
            text=f"expected Content-Type {content_type}, got {request.content_type or 'none'}"
        )
    cap = request.app._client_max_size
    if request.content_length is not None and request.content_length > cap:
        raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=request.content_length)
    raw = await request.read()  # raises 413 past the cap for chunked bodies too
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(text="body is not UTF-8") from None
    if not text.strip():
        raise web.HTTPBadRequest(text="empty body")
    return text


def json_object(text: str) -> dict[str, Any]:
    """The JSON object in a request body; 400 if it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # 64 KB of brackets nest past json's limit
        raise web.HTTPBadRequest(text="body is not valid JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def service_unavailable() -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text="too many sessions", headers={"Retry-After": str(RETRY_AFTER_S)}
    )
