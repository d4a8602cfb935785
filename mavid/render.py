"""Render an answer to an MP4 (H.264 + AAC, muxed with `av`), clip by clip, any length.

Each clip is encoded and written as soon as it is made, so memory does not grow with length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from mavid.interfaces import AVClip, CancelToken, Conductor, Creator, UserTurn
from mavid.segment import ClipSegmenter

log = logging.getLogger(__name__)


@dataclass
class RenderConfig:
    question: str | None = None
    speech: str | None = None
    motion: str | None = None
    out: Path = Path("answer.mp4")
    clips: int | None = None  # None: as many as the speech needs
    ref_image: Path | None = None
    checkpoint: Path | None = None
    seed: int = 0


def ask(conductor: Conductor, question: str) -> tuple[str, str]:
    """The Conductor's full speech and motion directives for a text question."""
    speech, motion = [], []
    for delta in conductor.stream(UserTurn(text=question), CancelToken()):
        speech.append(delta.speech)
        motion.append(delta.motion)
    return "".join(speech).strip(), "".join(motion).strip()


def clip_prompts(speech: str, clips: int | None) -> list[str]:
    """Speech cut into per-clip prompts (mavid.segment); padded with silence or cut to `clips`."""
    seg = ClipSegmenter()
    prompts = seg.feed(speech + " ") + seg.flush() if speech.strip() else []
    if clips is None:
        return prompts or [""]
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    return (prompts + [""] * clips)[:clips]


def generate_clips(
    creator: Creator,
    prompts: list[str],
    motion: str,
    reference_image: np.ndarray | None = None,
    seed: int = 0,
    drain: bool = True,
    max_extra_clips: int = 30,
) -> Iterator[AVClip]:
    """Clips of one answer; the first is the spec's shorter first clip, as in a live turn.

    With `drain`, more (empty-prompt) clips follow while the stream still holds speech the
    prompts queued (`pending_speech_frames`), as the agent does, so no word is cut off.
    """
    stream = creator.new_stream(reference_image, seed=seed)
    for i, speech in enumerate(prompts):
        frames = creator.spec.first_clip_frames if i == 0 else creator.spec.clip_frames
        yield stream.next_clip(speech, motion, num_frames=frames)
    while drain and getattr(stream, "pending_speech_frames", 0) > 0 and max_extra_clips > 0:
        max_extra_clips -= 1
        yield stream.next_clip("", motion, num_frames=creator.spec.clip_frames)


def write_mp4(clips: Iterable[AVClip], out: Path, progress: tqdm | None = None) -> Path:
    """Mux clips into `out` as they arrive: H.264 yuv420p video + AAC mono audio."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), mode="w") as container:
        video = audio = None
        samples = 0
        for clip in clips:
            if video is None:
                h, w = clip.frames.shape[1:3]
                video = container.add_stream("libx264", rate=clip.fps)
                video.width, video.height, video.pix_fmt = w, h, "yuv420p"
                video.options = {"preset": "veryfast", "crf": "20"}
                audio = container.add_stream("aac", rate=clip.sample_rate, layout="mono")
            for frame in clip.frames:
                container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            chunk = av.AudioFrame.from_ndarray(
                clip.audio.astype(np.float32)[None, :], format="fltp", layout="mono"
            )
            chunk.sample_rate = clip.sample_rate
            chunk.pts = samples
            chunk.time_base = Fraction(1, clip.sample_rate)
            samples += clip.audio.shape[0]
            container.mux(audio.encode(chunk))
            if progress is not None:
                progress.update(1)
        if video is None:
            raise ValueError("no clips to write")
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return out


def render(
    creator: Creator,
    speech: str,
    motion: str,
    out: Path,
    clips: int | None = None,
    reference_image: np.ndarray | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    prompts = clip_prompts(speech, clips)
    # a fixed clip count is kept exactly; otherwise the answer runs until its speech is out
    made = generate_clips(creator, prompts, motion, reference_image, seed, drain=clips is None)
    with tqdm(total=len(prompts), unit="clip", disable=not progress, desc="render") as bar:
        return write_mp4(made, out, bar)


def render_main(cfg: RenderConfig) -> Path:
    """`run_agent.py render`: answer a question (or speak given directives) into an MP4."""
    from mavid.avatar import load_avatar_model

    if cfg.question is None and cfg.speech is None:
        raise ValueError("render needs a question or a speech directive")
    ref = None
    if cfg.ref_image is not None:
        ref = np.asarray(Image.open(cfg.ref_image).convert("RGB"))
    bundle = load_avatar_model(cfg.checkpoint, seed=cfg.seed)
    speech, motion = cfg.speech or "", cfg.motion or ""
    if cfg.question is not None:
        asked_speech, asked_motion = ask(bundle.conductor, cfg.question)
        log.info("the Conductor answered %r (motion: %r)", asked_speech, asked_motion)
        speech = speech or asked_speech
        motion = motion or asked_motion
    return render(bundle.creator, speech, motion, cfg.out, cfg.clips, ref, cfg.seed)
