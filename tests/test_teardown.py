"""After N sessions connect and vanish, no task, thread or peer connection is left."""

from __future__ import annotations

import asyncio
import gc
import threading

from aiortc import RTCPeerConnection
from conftest import loopback_config, running_server

from realtime.contrib.client import LoopbackPeer
from signaling.state import STATE


def live_peer_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is RTCPeerConnection)


def worker_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("model", "vad"))]


async def test_vanished_peers_leave_nothing_behind(tone_model) -> None:
    tasks_before = asyncio.all_tasks()
    peers_before = live_peer_connections()
    async with running_server(loopback_config(), tone_model) as (url, app):
        registry = app[STATE].registry
        peers = [LoopbackPeer() for _ in range(3)]
        for peer in peers:
            await peer.connect(url)
        for peer in peers:
            await peer.wait_channel_open()
        peers[0].send({"type": "text", "text": "talk while I vanish"})
        await peers[0].wait_event(lambda e: e["type"] == "state" and e["state"] == "speaking")
        assert len(registry) == 3
        for peer in peers:  # hang up without DELETE: the server notices on its own
            await peer.close()
        for _ in range(200):
            if len(registry) == 0:
                break
            await asyncio.sleep(0.05)
        assert len(registry) == 0
        metrics = app[STATE].metrics.registry
        assert metrics.get_sample_value("mavid_sessions_active") == 0
        assert metrics.get_sample_value("mavid_sessions_total") == 3
        del peers, peer
    for _ in range(100):  # threads of a shut-down pool exit once their work item returns
        if not worker_threads():
            break
        await asyncio.sleep(0.05)
    assert worker_threads() == []
    leftover = [t for t in asyncio.all_tasks() - tasks_before if t is not asyncio.current_task()]
    assert leftover == []
    assert live_peer_connections() == peers_before
