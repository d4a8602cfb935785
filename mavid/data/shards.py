"""WebDataset-style tar shards of dialogue samples, a JSON manifest, and a reader.

One sample = a group of tar members sharing a key:
  {key}.json        plan, texts, directive, clips (per-clip speech/motion), word timing, identities
  {key}.video.mp4   the answer's frames (H.264, yuv420p, one thread: deterministic bytes)
  {key}.audio.flac  the answer's audio (speech + ambience), 16-bit, spec.audio_sample_rate
  {key}.speech.flac the clean speech alone (for the meters)
  {key}.mouth.npy   (F, 2) float32 ground-truth mouth (opening, rounding) per frame
  {key}.user.png    the visitor's camera frames side by side (lossless: props must stay legible)
  {key}.user.flac   the visitor's speech at 16 kHz (absent when the turn was typed)
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from mavid.data.dialogue import (
    USER_SAMPLE_RATE,
    ClipTarget,
    DialogueSample,
    SamplePlan,
)
from mavid.data.domain import Answer
from mavid.data.faces import Identity
from mavid.data.speech import Voice, WordTiming

__all__ = [
    "MANIFEST",
    "WorldDataset",
    "decode_audio",
    "decode_video",
    "encode_audio",
    "encode_sample",
    "encode_video",
    "read_manifest",
    "sample_from_members",
]

MANIFEST = "manifest.json"
_REQUIRED = ("json", "video.mp4", "audio.flac", "speech.flac", "mouth.npy", "user.png")


def encode_video(frames: np.ndarray, fps: int, crf: int = 18) -> bytes:
    """(F, H, W, 3) uint8 -> MP4 bytes."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (F, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        stream.codec_context.thread_count = 1
        for f in frames:
            for pkt in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                box.mux(pkt)
        for pkt in stream.encode(None):
            box.mux(pkt)
    return buf.getvalue()


def decode_video(data: bytes) -> np.ndarray:
    """MP4 bytes -> (F, H, W, 3) uint8."""
    try:
        with av.open(io.BytesIO(data), "r") as box:
            frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    except av.FFmpegError as e:
        raise ValueError(f"not a decodable video: {e}") from e
    if not frames:
        raise ValueError("video holds no frames")
    return np.stack(frames)


def encode_audio(audio: np.ndarray, sample_rate: int) -> bytes:
    """(N,) float32 mono -> 16-bit FLAC bytes."""
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype(np.int16)[None, :]  # (1, N)
    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as box:
        stream = box.add_stream("flac", rate=sample_rate, layout="mono")
        stream.format = "s16"
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for pkt in stream.encode(frame):
            box.mux(pkt)
        for pkt in stream.encode(None):
            box.mux(pkt)
    return buf.getvalue()


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """FLAC bytes -> ((N,) float32, sample_rate)."""
    try:
        with av.open(io.BytesIO(data), "r") as box:
            rate = box.streams.audio[0].sample_rate
            chunks = [f.to_ndarray().reshape(-1) for f in box.decode(audio=0)]
    except av.FFmpegError as e:
        raise ValueError(f"not decodable audio: {e}") from e
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return (pcm.astype(np.float32) / 32767).astype(np.float32), rate


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def encode_sample(sample: DialogueSample, crf: int = 18) -> dict[str, bytes]:
    """The tar members of one sample, by suffix."""
    key = sample.plan.key
    meta = {
        "key": key,
        "plan": asdict(sample.plan),
        "question": sample.question,
        "answer": asdict(sample.answer),
        "directive": sample.directive,
        "clips": [asdict(c) for c in sample.clips],
        "words": [asdict(w) for w in sample.words],
        "avatar_identity": asdict(sample.avatar_identity),
        "user_identity": asdict(sample.user_identity),
        "sample_rate": sample.sample_rate,
        "fps": sample.fps,
        "num_frames": int(sample.frames.shape[0]),
        "user_frames": int(sample.user_frames.shape[0]),
    }
    out = {
        "json": json.dumps(meta, sort_keys=True).encode(),
        "video.mp4": encode_video(sample.frames, sample.fps, crf),
        "audio.flac": encode_audio(sample.audio, sample.sample_rate),
        "speech.flac": encode_audio(sample.speech_audio, sample.sample_rate),
        "mouth.npy": _npy(sample.mouth.astype(np.float32)),
        "user.png": _png(np.concatenate(list(sample.user_frames), axis=1)),  # (H, Fu*W, 3)
    }
    if sample.user_audio is not None:
        out["user.flac"] = encode_audio(sample.user_audio, USER_SAMPLE_RATE)
    return out


def _tuple_rgb(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def sample_from_members(members: dict[str, bytes]) -> DialogueSample:
    """Rebuild a DialogueSample from its tar members (inverse of `encode_sample`)."""
    missing = sorted(set(_REQUIRED) - set(members))
    if missing:
        raise ValueError(f"sample is missing tar members {missing} (a damaged shard?)")
    meta = json.loads(members["json"])
    plan_d = dict(meta["plan"])
    plan_d["user_voice"] = Voice(**plan_d["user_voice"])
    plan_d["avatar_voice"] = Voice(**plan_d["avatar_voice"])
    plan = SamplePlan(**plan_d)
    frames = decode_video(members["video.mp4"])
    audio, sr = decode_audio(members["audio.flac"])
    speech, _ = decode_audio(members["speech.flac"])
    user = np.asarray(Image.open(io.BytesIO(members["user.png"])).convert("RGB"))
    n_user = meta["user_frames"]
    user_frames = np.stack(np.split(user, n_user, axis=1)) if n_user else user[:0]
    user_audio = None
    if "user.flac" in members:
        user_audio, _ = decode_audio(members["user.flac"])
    return DialogueSample(
        plan=plan,
        question=meta["question"],
        answer=Answer(**meta["answer"]),
        directive=meta["directive"],
        user_audio=user_audio,
        user_frames=user_frames,
        audio=audio,
        speech_audio=speech,
        frames=frames,
        mouth=np.load(io.BytesIO(members["mouth.npy"])),
        clips=tuple(ClipTarget(**c) for c in meta["clips"]),
        words=tuple(WordTiming(**w) for w in meta["words"]),
        avatar_identity=Identity(**_tuple_rgb(meta["avatar_identity"])),
        user_identity=Identity(**_tuple_rgb(meta["user_identity"])),
        sample_rate=sr,
        fps=meta["fps"],
        meta={"plan": meta["plan"]},
    )


def write_shard(path: Path, encoded: list[tuple[str, dict[str, bytes]]]) -> None:
    """Write a tar of encoded samples to `path` atomically (a `.tmp` file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for key, members in encoded:
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size = len(data)
                info.mtime = 0  # same bytes from the same seed
                tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)


def iter_shard(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield (key, members) in order from one shard."""
    key, group = None, {}
    with tarfile.open(path, "r") as tar:
        for info in tar:
            if not info.isfile():
                continue
            k, _, suffix = info.name.partition(".")
            if key is not None and k != key:
                yield key, group
                group = {}
            key = k
            f = tar.extractfile(info)
            group[suffix] = f.read() if f else b""
    if key is not None:
        yield key, group


def read_manifest(root: Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no {MANIFEST} in {root}: build the world first")
    return json.loads(path.read_text())


@dataclass
class WorldDataset:
    """The samples of one split of a built world, in manifest order.

    Samples are decoded `decode_threads` at a time (FFmpeg decodes outside the GIL): reading
    the 800 training samples of world-1000 takes ~40 s on one thread, and every training stage
    reads them. None: one thread per CPU, at most 16.
    """

    root: Path
    split: str = "train"
    decode_threads: int | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.manifest = read_manifest(self.root)
        if self.split not in self.manifest["splits"]:
            raise ValueError(f"unknown split {self.split!r}; have {list(self.manifest['splits'])}")
        self._keys = {
            shard["name"]: [k for k, s in shard["samples"] if s == self.split]
            for shard in self.manifest["shards"]
        }

    def __len__(self) -> int:
        return self.manifest["splits"][self.split]

    def keys(self) -> list[str]:
        return [k for ks in self._keys.values() for k in ks]

    def __iter__(self) -> Iterator[DialogueSample]:
        threads = self.decode_threads or min(16, os.cpu_count() or 1)
        if threads <= 1:
            for members in self._members():
                yield sample_from_members(members)
            return
        with ThreadPoolExecutor(threads) as pool:
            window: deque = deque()
            for members in self._members():
                window.append(pool.submit(sample_from_members, members))
                if len(window) > 2 * threads:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def _members(self) -> Iterator[dict[str, bytes]]:
        """The tar members of this split's samples, in manifest order."""
        for shard in self.manifest["shards"]:
            wanted = set(self._keys[shard["name"]])
            if not wanted:
                continue
            for key, members in iter_shard(self.root / shard["name"]):
                if key in wanted:
                    yield members
