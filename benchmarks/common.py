"""What both benchmarks share: a server on loopback (in-process unless --url), figures."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence

import numpy as np
from aiohttp import web

from realtime.contrib.client import LoopbackPeer
from signaling.server import ServerConfig, build_app, load_model, warm_up

LOUD = 0.003  # rms of a 20-ms frame; decoded silence is ~0
STALL_S = 0.1


@contextlib.asynccontextmanager
async def loopback_server(cfg: ServerConfig, url: str | None) -> AsyncIterator[str]:
    """Yield the base URL of a server: `url` as given, or the real model served in-process."""
    if url:
        yield url if url.endswith("/") else url + "/"
        return
    model = load_model(cfg)
    warm_up(model)
    runner = web.AppRunner(build_app(cfg, model), handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


def percentiles(values: Sequence[float]) -> str:
    if not values:
        return "n/a"
    arr = np.asarray(values)
    return f"p50 {np.percentile(arr, 50):.3f} s  p95 {np.percentile(arr, 95):.3f} s  (n={arr.size})"


def first_loud(peer: LoopbackPeer, after: float) -> float | None:
    return next((t for t, rms in peer.received.audio if t >= after and rms > LOUD), None)


def audio_stop(peer: LoopbackPeer, after: float, quiet_frames: int = 5) -> float | None:
    """Arrival time of the first frame after `after` that starts a run of quiet frames."""
    audio = [(t, rms) for t, rms in peer.received.audio if t >= after]
    for i in range(len(audio) - quiet_frames):
        if all(rms <= LOUD for _, rms in audio[i : i + quiet_frames]):
            return audio[i][0]
    return None


def arrival_gaps(peer: LoopbackPeer, start: float, end: float) -> list[float]:
    """Gaps > STALL_S between consecutive audio frames arriving in [start, end]."""
    times = [t for t, _ in peer.received.audio if start <= t <= end]
    return [b - a for a, b in itertools.pairwise(times) if b - a > STALL_S]


def now() -> float:
    return time.monotonic()


_SERVE = """
import asyncio, json, sys
from signaling.server import ServerConfig, serve
cfg = ServerConfig(**json.loads(sys.argv[1]))
asyncio.run(serve(cfg, ready=lambda url: print(url, flush=True)))
"""


@contextlib.asynccontextmanager
async def server_process(cfg: dict) -> AsyncIterator[tuple[str, int]]:
    """`serve()` in a child process (so its CPU and RSS are its own); yields (URL, pid)."""
    import asyncio
    import json
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVE, json.dumps(cfg), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        if not line:
            raise RuntimeError("server process exited before listening")
        yield line.decode().strip(), proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


def rss_mib_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")
