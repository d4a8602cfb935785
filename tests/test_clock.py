from __future__ import annotations

import asyncio

from realtime.clock import MediaClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_media_time_counts_from_origin() -> None:
    now = FakeTime()
    clock = MediaClock(now)
    assert clock.now() == 0.0
    now.t += 1.5
    assert clock.now() == 1.5
    assert clock.to_wall(2.0) == 102.0


async def test_sleep_until_past_returns_at_once_and_future_waits() -> None:
    clock = MediaClock()
    await asyncio.wait_for(clock.sleep_until(-1.0), 0.5)
    await clock.sleep_until(0.05)
    assert clock.now() >= 0.05
