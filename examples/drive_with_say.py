"""Drive a live session from a backend script over HTTP: watch its events (SSE), make the
avatar say things, cut it off.

    python examples/drive_with_say.py http://127.0.0.1:8080/ SESSION_ID [--token T] \
        "Hello there." "Let me show you around."

The session id is what `/offer` answered (`session.id` in mavid-client.js).
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp


async def events(http: aiohttp.ClientSession, url: str) -> None:
    """Print the session's events as they come; returns when the session ends."""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data:"):
                print("event:", json.loads(line[5:]))


async def drive(
    base: str, session_id: str, lines: list[str], token: str | None, pause_s: float = 3.0
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    session_url = f"{base.rstrip('/')}/sessions/{session_id}"
    async with aiohttp.ClientSession(headers=headers) as http:
        watcher = asyncio.create_task(events(http, f"{session_url}/events"))
        for line in lines:
            async with http.post(f"{session_url}/say", json={"speech": line}) as r:
                print("say:", r.status, await r.json())
            await asyncio.sleep(pause_s)  # let it speak (a say cuts whatever is playing)
        async with http.post(f"{session_url}/interrupt") as r:
            print("interrupt:", r.status, await r.json())
        await asyncio.sleep(1.0)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("session_id")
    parser.add_argument("lines", nargs="+")
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    asyncio.run(drive(args.url, args.session_id, args.lines, args.token))


if __name__ == "__main__":
    main()
