"""One media clock for every outbound track of a session.

Audio and video read their timestamps from the same origin, so they cannot drift apart:
a 20-ms audio frame k and a video frame n are due at `k * 0.02` and `n / fps` seconds after
the same start, whatever the event loop does in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class MediaClock:
    """Seconds since the session's media started, on a monotonic source."""

    def __init__(self, time_fn: Callable[[], float] = time.monotonic) -> None:
        self._time_fn = time_fn
        self._origin = time_fn()

    @property
    def origin(self) -> float:
        """The `time_fn` reading that media time 0 corresponds to."""
        return self._origin

    def now(self) -> float:
        return self._time_fn() - self._origin

    def to_wall(self, media_time: float) -> float:
        """A media time as a `time_fn` reading (for latency figures)."""
        return self._origin + media_time

    async def sleep_until(self, media_time: float) -> None:
        delay = media_time - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
