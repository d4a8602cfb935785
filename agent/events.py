"""Fan-out of a session's events to in-process listeners (the Python API, SSE streams).

Each listener has its own bounded queue: a slow listener loses its oldest events (and is
told how many) rather than growing memory or slowing the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

_END = object()


class EventSubscription:
    """One listener's view of the events: iterate it; it ends when the session ends."""

    def __init__(self, feed: EventFeed, maxsize: int) -> None:
        self._feed = feed
        # bounded by hand: `maxsize` events, plus room for the end marker
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._maxsize = maxsize
        self.dropped = 0  # events this listener lost because it read too slowly

    def _put(self, item: Any) -> None:
        if item is not _END and self._queue.qsize() >= self._maxsize:
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        reported = 0
        try:
            while True:
                item = await self._queue.get()
                if item is _END:
                    return
                if self.dropped > reported:  # tell the listener it missed some
                    yield {"type": "dropped", "count": self.dropped - reported}
                    reported = self.dropped
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (also done when iteration ends)."""
        self._feed._subs.discard(self)


class EventFeed:
    """Publishes a session's events to every subscription; `end()` finishes them all."""

    def __init__(self, maxsize: int = 256) -> None:
        self._maxsize = maxsize
        self._subs: set[EventSubscription] = set()
        self.ended = False

    def subscribe(self) -> EventSubscription:
        sub = EventSubscription(self, self._maxsize)
        if self.ended:
            sub._put(_END)
        else:
            self._subs.add(sub)
        return sub

    def publish(self, event: Mapping[str, Any]) -> None:
        item = dict(event)
        for sub in list(self._subs):
            sub._put(item)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for sub in list(self._subs):
            sub._put(_END)
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._subs)
