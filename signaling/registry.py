"""The server's running sessions, under a cap on how many may run at once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from agent.session import Session

logger = logging.getLogger(__name__)


class Full(Exception):
    """No room for another session."""


@dataclass
class Running:
    session: Session
    task: asyncio.Task


class SessionRegistry:
    def __init__(self, max_sessions: int) -> None:
        if max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        self.max_sessions = max_sessions
        self._reserved = 0  # slots taken by offers still being negotiated
        self._running: dict[str, Running] = {}

    def __len__(self) -> int:
        return len(self._running)

    def reserve(self) -> None:
        """Take a slot for a new session, or raise Full. Release with `release()` or `add()`."""
        if self._reserved + len(self._running) >= self.max_sessions:
            raise Full
        self._reserved += 1

    def release(self) -> None:
        self._reserved -= 1

    def add(self, session: Session) -> Running:
        """Run a session in the reserved slot; the slot frees itself when the session ends."""
        self._reserved -= 1
        task = asyncio.create_task(session.run(), name=f"session-{session.id}")
        running = Running(session, task)
        self._running[session.id] = running
        task.add_done_callback(lambda _: self._running.pop(session.id, None))
        return running

    def get(self, session_id: str) -> Running | None:
        return self._running.get(session_id)

    async def end(self, session_id: str) -> bool:
        """End one session and wait for its cleanup. False if there is no such session."""
        running = self._running.get(session_id)
        if running is None:
            return False
        await running.session.close()
        await asyncio.gather(running.task, return_exceptions=True)
        return True

    async def close_all(self) -> None:
        for session_id in list(self._running):
            await self.end(session_id)
