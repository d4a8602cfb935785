"""The session's event fan-out: every listener gets every event in order, a slow listener's
queue stays bounded (oldest dropped, and it is told), and the end reaches everyone."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from agent.events import EventFeed


async def test_listeners_get_events_in_order_and_the_end() -> None:
    feed = EventFeed(maxsize=16)
    subs = [feed.subscribe(), feed.subscribe()]
    assert len(feed) == 2
    for i in range(5):
        feed.publish({"type": "n", "i": i})
    feed.end()
    got = [[e["i"] async for e in sub] for sub in subs]
    assert got == [[0, 1, 2, 3, 4]] * 2
    assert len(feed) == 0
    late = feed.subscribe()  # after the end: an empty, finished stream
    assert [e async for e in late] == []


async def test_a_slow_listener_is_bounded_and_told_what_it_lost() -> None:
    feed = EventFeed(maxsize=8)
    slow, fast = feed.subscribe(), feed.subscribe()
    fast_seen: list[int] = []

    async def read_fast() -> None:
        async for event in fast:
            fast_seen.append(event["i"])

    reader = asyncio.create_task(read_fast())
    for i in range(1000):
        feed.publish({"type": "n", "i": i})
        await asyncio.sleep(0)  # the fast reader keeps up
    assert slow._queue.qsize() <= 8  # the slow one never holds more than its bound
    feed.end()
    await reader
    assert fast_seen == list(range(1000))
    got = [e async for e in slow]
    assert got[0] == {"type": "dropped", "count": 992}
    assert [e["i"] for e in got[1:]] == list(range(992, 1000))


async def test_closing_a_subscription_stops_delivery() -> None:
    feed = EventFeed()
    sub = feed.subscribe()
    sub.close()
    feed.publish({"type": "x"})
    assert len(feed) == 0 and sub._queue.empty()


@given(st.integers(1, 12), st.integers(0, 60))
def test_what_a_listener_reads_is_the_newest_events(maxsize: int, n: int) -> None:
    async def run() -> list[dict]:
        feed = EventFeed(maxsize)
        sub = feed.subscribe()
        for i in range(n):
            feed.publish({"type": "n", "i": i})
        feed.end()
        return [e async for e in sub]

    got = asyncio.run(run())
    kept = [e["i"] for e in got if e["type"] == "n"]
    dropped = sum(e["count"] for e in got if e["type"] == "dropped")
    assert kept == list(range(n))[n - len(kept) :]  # the newest, in order
    assert dropped + len(kept) == n
    assert len(kept) == min(n, maxsize)
