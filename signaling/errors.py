"""Every error answer is JSON: `{"error": ..., "status": ...}`, with the status's headers."""

from __future__ import annotations

import logging

from aiohttp import web

logger = logging.getLogger(__name__)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Turn aiohttp's HTTP exceptions (404, 405, 413 ...) and unexpected errors (500) into
    JSON error bodies."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k.lower() not in ("content-type", "content-length")
        }
        return error(exc.status, exc.reason if not exc.text else exc.text, headers)
    except Exception:  # a bug or a model failure: logged in full, answered without details
        logger.exception("event=error path=%s", request.path)
        return error(500, "internal error")
