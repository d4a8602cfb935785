"""Conductor figures on this machine: tiny Thinker latency / throughput, parser and segmenter.

    .venv/bin/python benchmarks/conductor.py [--tokens 64] [--repeats 3] [--checkpoint DIR]

Prints, per turn kind (text / audio (a spoken question) / video / all three), the time to the
first directive delta (with the hearing's transcription, where the Conductor has one) and the
decode rate, then the parser's and segmenter's throughput.
Timings on a shared 2-core machine are noisy: the median of `--repeats` runs is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mavid.conductor import ConductorConfig, DirectiveParser, ThinkerConductor
from mavid.data.speech import synthesize
from mavid.interfaces import CancelToken, UserTurn
from mavid.segment import ClipSegmenter

QUESTION = "Excuse me, where are the toilets, and how much is a ticket for a child?"


def turns(seconds: float) -> dict[str, UserTurn]:
    rng = np.random.default_rng(0)
    # a spoken question (espeak-ng) in `seconds` of audio: a Conductor with hearing writes it
    # down first, and that time counts
    words = synthesize(QUESTION, sample_rate=16_000).audio[: int(16_000 * seconds)]
    audio = np.zeros(int(16_000 * seconds), np.float32)
    audio[: words.size] = words
    frames = tuple(
        rng.integers(0, 255, (128, 128, 3), dtype=np.uint8) for _ in range(int(2 * seconds))
    )
    return {
        "text": UserTurn(text="Hello, what can you see in my room today?"),
        "audio": UserTurn(audio=audio),
        "video": UserTurn(video=frames),
        "all": UserTurn(text="What is this?", audio=audio, video=frames),
    }


def time_turn(conductor: ThinkerConductor, turn: UserTurn) -> tuple[float, float]:
    start = time.perf_counter()
    first = None
    for _ in conductor.stream(turn, CancelToken()):
        if first is None:
            first = time.perf_counter() - start
    return first or float("nan"), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per turn")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0, help="user audio/video length")
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="a Thinker directory, e.g. mavid/weights/tiny/conductor (default: the tiny preset)",
    )
    args = ap.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    n = args.tokens
    cfg = ConductorConfig(max_new_tokens=n, min_new_tokens=n, seed=0)
    if args.checkpoint is None:
        conductor, name = ThinkerConductor.tiny(seed=0, config=cfg), "tiny preset"
    else:
        conductor, name = ThinkerConductor.from_pretrained(args.checkpoint, cfg), args.checkpoint
    params = sum(p.numel() for p in conductor.model.parameters())
    print(f"Thinker ({name}): {params / 1e6:.2f} M parameters, vocab {len(conductor.tokenizer)}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    kinds = turns(args.seconds)
    if conductor.hearing is not None:
        h = conductor.hearing
        words = ", read as known words" if h.word_search is not None else ""
        sure = f"where sure from {h.config.ear_confidence:g}{words}"
        ear = f"its ear ({sure}), else " if h.ear else ""
        by = "Whisper" if h.config.recognizer == "whisper" else f"PocketSphinx ({h.config.lm} LM)"
        print(f"hearing: {ear}{by}; audio turns are written down first "
              f"({QUESTION!r} -> {h.transcribe(kinds['audio'])!r})")  # fmt: skip
    for turn in kinds.values():  # warm-up: first calls allocate and load
        time_turn(conductor, turn)
    print(f"{'turn':<6} {'prompt tok':>10} {'first delta ms':>15} {'total ms':>9} {'tok/s':>7}")
    for name, turn in kinds.items():
        seen = conductor.prepare(turn)
        ids = conductor.encoder.encode_prompt(seen, conductor.system_prompt)["input_ids"]
        prompt = ids.shape[1]
        runs = [time_turn(conductor, turn) for _ in range(args.repeats)]
        first = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        print(f"{name:<6} {prompt:>10} {first * 1e3:>15.1f} {total * 1e3:>9.1f} {n / total:>7.0f}")
    if conductor.hearing is not None and conductor.hearing.ear is not None:
        # the same audio turn as a person's voice goes: past the ear, to the recognizer
        ear, conductor.hearing.ear = conductor.hearing.ear, None
        time_turn(conductor, kinds["audio"])
        runs = [time_turn(conductor, kinds["audio"]) for _ in range(args.repeats)]
        conductor.hearing.ear = ear
        first = statistics.median(r[0] for r in runs)
        print(f"audio turn written down by the recognizer alone (as a person's voice is): "
              f"first delta {first * 1e3:.1f} ms")  # fmt: skip

    text = "Hello there! I can see a red cup on your desk.<m_bos>smiles, nods<m_eos>" * 200
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    start = time.perf_counter()
    parser = DirectiveParser()
    for p in pieces:
        parser.feed(p)
    parser.close()
    dt = time.perf_counter() - start
    print(f"parser: {len(text) / dt / 1e6:.2f} M chars/s in 3-char deltas")
    speech = "Hello there, I can see a red cup on your desk. " * 400
    start = time.perf_counter()
    seg = ClipSegmenter()
    prompts = [q for i in range(0, len(speech), 4) for q in seg.feed(speech[i : i + 4])]
    prompts += seg.flush()
    dt = time.perf_counter() - start
    print(f"segmenter: {len(speech.split()) / dt / 1e3:.0f} k words/s, {len(prompts)} prompts")


if __name__ == "__main__":
    main()
