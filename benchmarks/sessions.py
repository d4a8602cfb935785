"""How many concurrent sessions hold real time: raise N until RTF < 1 or stalls appear.

    .venv/bin/python -m benchmarks.sessions [--max 6] [--seconds 20] [--long-seconds 60]

The server runs `serve()` (real model) in a child process; N loopback aiortc peers each type
turn after turn. A level holds when the median Creator RTF is >= 1 and no answer had a gap
> 100 ms between clips (server-side stalls; client audio arrival gaps are printed too). The
largest level held then runs `--long-seconds` while the server's RSS is sampled. Figures are
printed, not asserted; the machine is shared, so they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from benchmarks.common import STALL_S, arrival_gaps, rss_mib_of, server_process
from realtime.aiortc_transport import pinned_host_addresses
from realtime.contrib.client import LoopbackPeer


async def talk(peer: LoopbackPeer, until: float) -> None:
    """Type a turn, wait for the answer to end, repeat until `until` (monotonic)."""
    while time.monotonic() < until:
        n = len(peer.received.events)
        peer.send({"type": "text", "text": "tell me something nice"})
        try:
            await peer.wait_event(
                lambda e: e["type"] == "state" and e["state"] == "listening",
                within=max(1.0, until + 30 - time.monotonic()),
                after=n + 1,
            )
        except TimeoutError:
            return


async def level(url: str, n: int, seconds: float, pid: int, rss: list[float]) -> dict:
    peers = [LoopbackPeer(send_video=False) for _ in range(n)]
    try:
        for peer in peers:
            await peer.connect(url)
        for peer in peers:
            await peer.wait_channel_open()
        start = time.monotonic()
        until = start + seconds
        sampler = asyncio.create_task(sample_rss(pid, rss))
        await asyncio.gather(*(talk(p, until) for p in peers))
        sampler.cancel()
        clips = [e for p in peers for e in p.events("clip")]
        rtf = [c["duration"] / c["gen_seconds"] for c in clips if c["gen_seconds"] > 0]
        stalls = sum(1 for c in clips if c["gap"] > STALL_S)
        client_gaps = sum(len(arrival_gaps(p, start + 1, time.monotonic())) for p in peers)
        return {
            "n": n,
            "clips": len(clips),
            "rtf": float(np.median(rtf)) if rtf else 0.0,
            "stalls": stalls,
            "client_gaps": client_gaps,
            "errors": sum(len(p.events("error")) for p in peers),
        }
    finally:
        for peer in peers:
            await peer.close()


async def sample_rss(pid: int, out: list[float]) -> None:
    while True:
        out.append(rss_mib_of(pid))
        await asyncio.sleep(2.0)


async def run(args: argparse.Namespace) -> None:
    cfg = {
        "port": 0,
        "ice_host_addresses": ["127.0.0.1"],
        "max_sessions": args.max,
        "max_answer_clips": args.clips,
        "threads": args.threads,
        "torch_threads": args.torch_threads,
        "seed": 0,
    }
    with pinned_host_addresses(["127.0.0.1"]):
        async with server_process(cfg) as (url, pid):
            print(f"server pid {pid} at {url}; RSS after load {rss_mib_of(pid):.0f} MiB")
            held = 0
            for n in range(1, args.max + 1):
                result = await level(url, n, args.seconds, pid, [])
                ok = result["rtf"] >= 1.0 and result["stalls"] == 0 and result["clips"] > 0
                print(
                    f"N={n}: clips {result['clips']}, median RTF {result['rtf']:.2f}, "
                    f"stalls {result['stalls']}, client audio gaps {result['client_gaps']}, "
                    f"errors {result['errors']} -> {'held' if ok else 'NOT held'}"
                )
                if not ok:
                    break
                held = n
            print(f"largest number of sessions held: {held}   target >= 4")
            if args.long_seconds > 0:
                n = max(held, 1)
                rss: list[float] = []
                result = await level(url, n, args.long_seconds, pid, rss)
                print(
                    f"long run, N={n}, {args.long_seconds:.0f} s: median RTF {result['rtf']:.2f}, "
                    f"stalls {result['stalls']}; server RSS start {rss[0]:.0f} MiB, "
                    f"end {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--long-seconds", type=float, default=60.0)
    parser.add_argument("--clips", type=int, default=4, help="max clips per answer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-threads", type=int, default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
