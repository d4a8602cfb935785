from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mavid.checkpoint import save_checkpoint
from mavid.config import MICRO
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MavidCreator
from mavid.render import RenderConfig, clip_prompts, render, render_main


def _probe(path: Path) -> tuple[int, float, set[str]]:
    with av.open(str(path)) as f:
        kinds = {s.type for s in f.streams}
        assert f.streams.video[0].codec_context.name == "h264"
        assert f.streams.audio[0].codec_context.name == "aac"
        frames = sum(1 for _ in f.decode(video=0))
    with av.open(str(path)) as f:
        samples = sum(fr.samples for fr in f.decode(audio=0))
        rate = f.streams.audio[0].rate
    return frames, samples / rate, kinds


def test_render_writes_a_playable_mp4_with_both_streams(tmp_path):
    creator = MavidCreator(CreatorModel.random(MICRO, 0))
    out = render(
        creator, "one two three four five six seven", "nod", tmp_path / "a.mp4", progress=False
    )
    frames, seconds, kinds = _probe(out)
    assert kinds == {"video", "audio"}
    # every prompt's clip, then clips until the speech they queued is spoken (MICRO's clips
    # are 0.36 s, shorter than the words: so there are more)
    n = len(clip_prompts("one two three four five six seven", None))
    first, full = MICRO.media.first_clip_frames, MICRO.media.clip_frames
    assert frames > first + (n - 1) * full and (frames - first) % full == 0
    assert seconds == pytest.approx(frames / 25, abs=0.1)
    fixed = render(creator, "one two three", "", tmp_path / "b.mp4", clips=3, progress=False)
    assert _probe(fixed)[0] == first + 2 * full  # a fixed clip count is kept


def test_clip_prompts():
    assert clip_prompts("", None) == [""]
    assert clip_prompts("a", 3) == ["a", "", ""]
    words = "one two three four five six seven eight nine ten"
    assert " ".join(p for p in clip_prompts(words, None)).split() == words.split()
    assert len(clip_prompts(words, 2)) == 2
    with pytest.raises(ValueError):
        clip_prompts("a", 0)


def test_render_main_from_a_checkpoint_with_a_reference_image(tmp_path):
    ckpt = save_checkpoint(CreatorModel.random(MICRO, 0), tmp_path / "ckpt" / "creator").parent
    ref = np.zeros((40, 40, 3), np.uint8)
    ref[..., 1] = 255
    Image.fromarray(ref).save(tmp_path / "ref.png")
    out = render_main(
        RenderConfig(
            speech="hello there",
            motion="smile",
            out=tmp_path / "b.mp4",
            clips=3,
            ref_image=tmp_path / "ref.png",
            checkpoint=ckpt,
        )
    )
    frames, _, kinds = _probe(out)
    assert frames == 5 + 2 * 9 and kinds == {"video", "audio"}
    with av.open(str(out)) as f:
        first = next(f.decode(video=0)).to_ndarray(format="rgb24")
    assert first[..., 1].mean() > 200 and first[..., 0].mean() < 60  # the reference image
    with pytest.raises(ValueError, match="question or a speech"):
        render_main(RenderConfig(out=tmp_path / "c.mp4"))
