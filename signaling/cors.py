"""CORS for the endpoints another origin may call (an integrator's page embedding the
avatar): /offer, /whip, /mavid-client.js and /sessions/*. Bearer tokens, not cookies, guard
them, so credentials are never allowed."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

_EXACT = ("/offer", "/whip", "/mavid-client.js")
_PREFIXES = ("/whip/", "/sessions/")


def _applies(path: str) -> bool:
    return path in _EXACT or path.startswith(_PREFIXES)


def allowed_origin(origins: Sequence[str], origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for a request from `origin` (None: refused)."""
    if "*" in origins:
        return "*"
    if origin and origin in origins:
        return origin
    return None


def install_cors(app: web.Application, origins: Sequence[str]) -> None:
    """Add CORS headers to every answer (errors included) on the CORS paths."""
    origins = tuple(origins)

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        if not _applies(request.path):
            return
        if "*" not in origins:
            response.headers["Vary"] = "Origin"
        allowed = allowed_origin(origins, request.headers.get("Origin"))
        if allowed is None:
            return  # the browser refuses the answer to the page
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = "Location"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"

    app.on_response_prepare.append(on_prepare)


async def preflight(request: web.Request) -> web.Response:
    """`OPTIONS` on a CORS path: 204; the headers come from `install_cors`."""
    return web.Response(status=204)
