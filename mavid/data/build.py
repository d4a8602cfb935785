"""Build the synthetic world: samples rendered in a process pool, written as tar shards.

Deterministic from the seed: sample i depends only on (seed, i), and shard k holds samples
[k*shard_size, (k+1)*shard_size). A finished shard is renamed into place together with its
sidecar index, so an interrupted build resumes by skipping complete shards.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from mavid.data.dialogue import SPLITS, plan_sample, render_sample
from mavid.data.domain import INTENTS
from mavid.data.shards import MANIFEST, encode_sample, write_shard
from mavid.interfaces import MediaSpec

__all__ = ["WorldConfig", "build_world"]


@dataclass(frozen=True)
class WorldConfig:
    out: Path
    seed: int = 0
    samples: int = 1000
    workers: int = 2  # processes; 0 or 1 renders in this process
    shard_size: int = 100
    crf: int = 18  # H.264 quality of the answer video
    spec: MediaSpec = field(default_factory=MediaSpec)
    progress: bool = True
    intents: tuple[str, ...] = ()  # only these intents (tests: short answers); () = all

    def __post_init__(self) -> None:
        if self.samples < 1 or self.shard_size < 1:
            raise ValueError("samples and shard_size must be >= 1")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")


def _make(args: tuple) -> tuple[str, str, dict[str, bytes]]:
    seed, index, spec, crf, intents = args
    plan = plan_sample(seed, index, intents)
    sample = render_sample(plan, seed, spec)
    return plan.key, plan.split, encode_sample(sample, crf)


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.tar"


def _index_path(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.json"


def _complete(out: Path, k: int) -> bool:
    return (out / _shard_name(k)).exists() and _index_path(out, k).exists()


def build_world(cfg: WorldConfig) -> dict:
    """Build (or finish building) the world in `cfg.out`; returns the manifest."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    old = out / MANIFEST
    if old.exists():
        prev = json.loads(old.read_text())
        have = (prev["seed"], prev["shard_size"], prev.get("only_intents", []))
        if have != (cfg.seed, cfg.shard_size, list(cfg.intents)):
            raise ValueError(
                f"{out} holds a world of seed {prev['seed']} / shard size {prev['shard_size']} "
                f"/ intents {have[2] or 'all'}; use another folder"
            )
        if prev["samples"] > cfg.samples:
            # rewriting the manifest would silently drop the samples past cfg.samples
            raise ValueError(
                f"{out} holds {prev['samples']} samples, more than the {cfg.samples} asked for; "
                f"ask for {prev['samples']} or more, or use another folder"
            )
    num_shards = -(-cfg.samples // cfg.shard_size)
    todo = [k for k in range(num_shards) if not _complete(out, k)]
    done_samples = sum(
        min(cfg.shard_size, cfg.samples - k * cfg.shard_size) for k in range(num_shards)
    ) - sum(min(cfg.shard_size, cfg.samples - k * cfg.shard_size) for k in todo)
    for stale in out.glob("*.tmp"):  # left by an interrupted run
        stale.unlink()

    started = time.perf_counter()
    bar = tqdm(
        total=cfg.samples,
        initial=done_samples,
        unit="sample",
        disable=not cfg.progress,
        desc="world",
    )
    pool = None
    if cfg.workers > 1:
        ctx = multiprocessing.get_context("spawn")  # espeak and torch state stay per process
        pool = ProcessPoolExecutor(cfg.workers, mp_context=ctx)
    try:
        for k in todo:
            lo, hi = k * cfg.shard_size, min(cfg.samples, (k + 1) * cfg.shard_size)
            jobs = [(cfg.seed, i, cfg.spec, cfg.crf, cfg.intents) for i in range(lo, hi)]
            results: Iterator = pool.map(_make, jobs, chunksize=2) if pool else map(_make, jobs)
            encoded, index = [], []
            for key, split, members in results:
                encoded.append((key, members))
                index.append((key, split))
                bar.update(1)
            # index first, then the tar: the tar's rename is what marks the shard complete
            _index_path(out, k).write_text(json.dumps({"samples": index}))
            write_shard(out / _shard_name(k), encoded)
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)

    shards, counts = [], dict.fromkeys(SPLITS, 0)
    size = 0
    for k in range(num_shards):
        index = json.loads(_index_path(out, k).read_text())["samples"]
        shards.append({"name": _shard_name(k), "samples": index})
        size += (out / _shard_name(k)).stat().st_size
        for _, split in index:
            counts[split] += 1
    manifest = {
        "version": 1,
        "seed": cfg.seed,
        "samples": cfg.samples,
        "shard_size": cfg.shard_size,
        "spec": asdict(cfg.spec),
        "intents": [i.name for i in INTENTS],
        "only_intents": list(cfg.intents),
        "splits": counts,
        "shards": shards,
        "bytes": size,
        "build_seconds_last_run": round(time.perf_counter() - started, 2),
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)
    return manifest


def main(argv: list[str] | None = None) -> None:
    """`python -m mavid.data.build OUT --samples N`: build and print time and size."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=100)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    m = build_world(WorldConfig(a.out, a.seed, a.samples, a.workers, a.shard_size))
    dt = time.perf_counter() - t
    print(
        f"built {m['samples']} samples {m['splits']} in {dt:.1f} s "
        f"({dt / max(1, m['samples']) * 1000:.0f} ms/sample), {m['bytes'] / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
