"""Response latency, RTF, stalls, A/V offset and barge-in time through a loopback aiortc peer.

    .venv/bin/python -m benchmarks.latency [--turns 5] [--url http://host:port/]

Each turn: the client speaks a question (espeak-ng); latency = end of speech in the sent audio
-> first avatar audio frame at the client. Then, 0.6 s into the answer, it speaks again:
barge-in time = onset of that speech -> avatar audio stops at the client. The interruption is
itself a turn; its answer plays out in full and gives the A/V offset (first answer audio vs
first answer video frame at the client) and the stalls (audio arrival gaps > 100 ms).
Figures are printed, not asserted; the machine is shared, so they are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable

import numpy as np

from benchmarks.common import (
    arrival_gaps,
    audio_stop,
    first_loud,
    loopback_server,
    percentiles,
)
from mavid.data.speech import synthesize
from realtime.aiortc_transport import pinned_host_addresses
from realtime.contrib.client import LoopbackPeer
from signaling.server import ServerConfig

QUESTIONS = [
    "Hello, how are you today?",
    "What is the weather like?",
    "Can you tell me a story?",
    "Where is the station?",
    "What time is it now?",
]
INTERRUPT = "Wait, stop."


async def wait_state(
    peer: LoopbackPeer, state: str, after: int, within: float = 30.0
) -> tuple[float, int]:
    """(arrival, index) of the first `state` event at index >= `after`."""
    for _ in range(int(within / 0.01)):
        for i, (t, e) in enumerate(peer.received.events[after:], after):
            if e["type"] == "state" and e["state"] == state:
                return t, i
        await asyncio.sleep(0.01)
    raise TimeoutError(f"no {state!r} state event")


async def until(predicate: Callable[[], float | None], within: float = 10.0) -> float:
    """Poll `predicate` (a measurement that appears as frames arrive) for up to `within` s."""
    for _ in range(int(within / 0.02)):
        if (value := predicate()) is not None:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError("measurement did not appear")


async def run(args: argparse.Namespace) -> None:
    cfg = ServerConfig(
        port=0,
        ice_host_addresses=["127.0.0.1"],
        max_answer_clips=args.clips,
        vad_hangover_ms=args.hangover_ms,
        vad_min_speech_ms=args.min_speech_ms,
        seed=0,
    )
    figures: dict[str, list[float]] = {
        k: []
        for k in ("latency", "endpoint", "first_clip", "delivery", "barge", "av", "gaps", "empty")
    }
    with pinned_host_addresses(["127.0.0.1"]):
        async with loopback_server(cfg, args.url) as url:
            peer = LoopbackPeer()
            try:
                await peer.connect(url)
                await peer.wait_channel_open()
                await asyncio.sleep(1.0)
                for k in range(args.turns):
                    try:
                        await turn(peer, QUESTIONS[k % len(QUESTIONS)], figures)
                    except TimeoutError:
                        print(f"turn {k} timed out; last events: {peer.events()[-12:]}")
                        raise
                rtf = [e["duration"] / e["gen_seconds"] for e in peer.events("clip")]
                server_gaps = [e["gap"] for e in peer.events("clip") if e["gap"] > 0.1]
            finally:
                await peer.close()
    print(
        f"turns: {args.turns}  hangover {args.hangover_ms} ms, min speech {args.min_speech_ms} ms"
    )
    print(f"response latency: {percentiles(figures['latency'])}  target p50 <= 0.6, p95 <= 1.0")
    print(f"  endpointing (speech end -> 'thinking' at client): {percentiles(figures['endpoint'])}")
    print(
        f"  first clip ('thinking' -> its clip event):       {percentiles(figures['first_clip'])}"
    )
    print(f"  delivery (clip event -> first audio frame):       {percentiles(figures['delivery'])}")
    print(f"barge-in time:    {percentiles(figures['barge'])}  target p95 <= 0.3")
    if figures["empty"]:
        print(f"answers without speech (random Conductor weights): {len(figures['empty'])}")
    if rtf:
        print(f"creator RTF:      median {np.median(rtf):.2f}  min {np.min(rtf):.2f}  n={len(rtf)}")
    worst = f" (worst {max(server_gaps):.2f} s)" if server_gaps else ""
    print(
        f"stalls:           client audio arrival gaps > 100 ms: {len(figures['gaps'])}; "
        f"server clip gaps > 100 ms: {len(server_gaps)}{worst}"
    )
    if figures["av"]:
        av = np.asarray(figures["av"]) * 1000
        print(
            f"A/V offset:       median {np.median(av):+.0f} ms, max |offset| "
            f"{np.max(np.abs(av)):.0f} ms  (first answer video frame - first answer audio frame)"
        )


async def turn(peer: LoopbackPeer, question: str, figures: dict[str, list[float]]) -> None:
    idle = peer.received.thumbs[-1]
    n = len(peer.received.events)
    peer.say(synthesize(question, sample_rate=48_000).audio, 48_000)
    t_think, i = await wait_state(peer, "thinking", n)
    try:
        await wait_state(peer, "speaking", i, within=8)
    except TimeoutError:  # random weights: the Conductor may say nothing at all
        figures["empty"].append(1.0)
        await asyncio.sleep(1.0)
        return
    t_clip, _ = await peer.wait_event(lambda e: e["type"] == "clip", 5, after=i)
    end = peer.mic.offsets[-1]
    t_audio = await until(lambda: first_loud(peer, end))
    figures["latency"].append(t_audio - end)
    figures["endpoint"].append(t_think - end)
    figures["first_clip"].append(t_clip - t_think)
    figures["delivery"].append(t_audio - t_clip)
    await asyncio.sleep(0.6)
    t_video = peer.video_change(end, idle)
    if t_video is not None:
        figures["av"].append(t_video - t_audio)
    # barge in; the interruption is a turn of its own, played out in full
    n = len(peer.received.events)
    peer.say(synthesize(INTERRUPT, sample_rate=48_000).audio, 48_000)
    await peer.wait_event(lambda e: e["type"] == "barge_in", 10, after=n)
    onset = peer.mic.onsets[-1]
    figures["barge"].append(await until(lambda: audio_stop(peer, onset)) - onset)
    try:
        t_speak, i = await wait_state(peer, "speaking", n, within=8)
    except TimeoutError:
        figures["empty"].append(1.0)
        await asyncio.sleep(1.0)
        return
    t_done, _ = await wait_state(peer, "listening", i)
    figures["gaps"] += arrival_gaps(peer, t_speak, t_done)
    await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--clips", type=int, default=3, help="max clips per answer")
    parser.add_argument("--hangover-ms", type=int, default=320)
    parser.add_argument("--min-speech-ms", type=int, default=96)
    parser.add_argument("--url", help="benchmark a running server instead of an in-process one")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
