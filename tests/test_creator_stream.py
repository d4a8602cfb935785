import threading

import numpy as np
import pytest
from conftest import paired_streams, with_settings

from mavid.config import MICRO
from mavid.creator.model import CreatorModel
from mavid.creator.stream import MAX_RMS, MavidCreator, MavidCreatorStream
from mavid.interfaces import AVClip, Cancelled, CancelToken, Creator, CreatorStream

SPEC = MICRO.media


@pytest.fixture(scope="module")
def creator() -> MavidCreator:
    return MavidCreator(CreatorModel.random(MICRO, 0))


class CancelAfter(CancelToken):
    """Cancels itself at its n-th check: lands between AR or denoising steps."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.checks = 0

    def raise_if_cancelled(self) -> None:
        self.checks += 1
        if self.checks >= self.n:
            self.cancel()
        super().raise_if_cancelled()


def test_implements_the_interfaces(creator):
    assert isinstance(creator, Creator)
    stream = creator.new_stream(seed=0)
    assert isinstance(stream, CreatorStream)
    assert stream.spec == SPEC


@pytest.mark.parametrize("frames", [None, 1, 5, 13])
def test_clip_shapes_and_exact_audio_length(creator, frames):
    clip = creator.new_stream(seed=0).next_clip("hello", "nod", num_frames=frames)
    f = frames or SPEC.clip_frames
    assert isinstance(clip, AVClip)
    assert clip.frames.shape == (f, SPEC.height, SPEC.width, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (SPEC.samples_for_frames(f),) and clip.audio.dtype == np.float32
    assert np.abs(clip.audio).max() <= 1.0
    assert (clip.sample_rate, clip.fps, clip.index) == (24_000, 25, 0)
    assert (clip.speech, clip.motion) == ("hello", "nod") and clip.gen_seconds > 0


def test_bad_frame_count(creator):
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        creator.new_stream().next_clip("a", "b", num_frames=8)


def test_reference_image_is_the_idle_face_and_first_frame(creator):
    ref = np.zeros((64, 48, 3), np.uint8)
    ref[:, :, 0] = 200
    stream = creator.new_stream(reference_image=ref, seed=1)
    face = stream.reference_frame()
    assert face.shape == (32, 32, 3) and (face[..., 0] == 200).all()
    first = stream.next_clip("hi", "")
    assert np.array_equal(first.frames[0], face)
    second = stream.next_clip("there", "")
    assert not np.array_equal(second.frames[0], face)  # only the first clip's first frame


def test_default_face_looks_like_a_face(creator):
    face = creator.new_stream().reference_frame()
    assert face.shape == (32, 32, 3)
    assert face.std() > 20  # not a flat image
    with pytest.raises(ValueError, match="RGB"):
        creator.new_stream(reference_image=np.zeros((4, 4)))


def test_same_seed_same_clips_and_streams_are_independent(creator):
    a = [creator.new_stream(seed=7).next_clip("x", "y") for _ in range(2)]
    assert np.array_equal(a[0].audio, a[1].audio) and np.array_equal(a[0].frames, a[1].frames)
    b = creator.new_stream(seed=8).next_clip("x", "y")
    assert not np.array_equal(a[0].frames, b.frames)


def test_parallel_streams_share_the_model(creator):
    expected = {}
    for seed in (1, 2):
        s = creator.new_stream(seed=seed)
        expected[seed] = [s.next_clip("one two", "nod").audio for _ in range(3)]
    got: dict[int, list] = {}

    def run(seed: int) -> None:
        s = creator.new_stream(seed=seed)
        got[seed] = [s.next_clip("one two", "nod").audio for _ in range(3)]

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        assert all(np.array_equal(x, y) for x, y in zip(expected[seed], got[seed], strict=True))


@pytest.mark.parametrize("at", [1, 3, 15])  # before work, inside the AR loop, inside denoising
def test_cancel_between_steps_leaves_the_stream_usable(creator, at):
    stream = creator.new_stream(seed=0)
    stream.next_clip("first", "")
    history = stream.history
    token = CancelAfter(at)
    with pytest.raises(Cancelled):
        stream.next_clip("cancelled", "", cancel=token)
    assert token.checks == at
    assert stream.history is history and stream.index == 1  # the cancelled clip left no trace
    clip = stream.next_clip("next turn", "", cancel=CancelToken())
    assert clip.index == 1 and clip.audio.shape == (SPEC.samples_for_frames(9),)


def test_denoising_steps_are_checked(creator):
    # checks = 1 (entry) + AR steps + sampler steps: cancelling at the last one hits the sampler
    stream = creator.new_stream(seed=0)
    ar_steps = SPEC.clip_frames + SPEC.num_codebooks
    token = CancelAfter(1 + ar_steps + MICRO.creator.sampler_steps)
    with pytest.raises(Cancelled):
        stream.next_clip("x", "", cancel=token)
    assert stream.history is None


def test_history_and_cache_stay_flat_over_100_clips(creator):
    stream: MavidCreatorStream = creator.new_stream(seed=0)
    sizes = []
    for i in range(100):
        stream.next_clip("the same sentence said again", "nod", num_frames=5 if i == 0 else None)
        sizes.append((stream.history.nbytes(), stream.last_cache_bytes))
    assert stream.index == 100
    assert len(set(sizes[2:])) == 1  # constant once the short first clip is out of the history


def test_bad_directive_types_are_refused(creator):
    stream = creator.new_stream()
    with pytest.raises(TypeError, match="str"):
        stream.next_clip(None, "")
    assert stream.index == 0 and stream.history is None


def test_classifier_free_guidance_runs_and_changes_the_video():
    base = CreatorModel.random(MICRO, 0)
    guided_model = with_settings(base, cfg_scale=4.0)
    plain = MavidCreator(base).new_stream(seed=2).next_clip("hi", "wave")
    cfg = MavidCreator(guided_model).new_stream(seed=2).next_clip("hi", "wave")
    assert np.array_equal(plain.audio, cfg.audio)  # guidance is on the video's motion text only
    assert not np.array_equal(plain.frames[1:], cfg.frames[1:])


@pytest.mark.parametrize("fusion", [True, False])
def test_audio_guidance_changes_only_the_video_and_needs_the_fusion(fusion):
    base = CreatorModel(MICRO.replace_creator(fusion=fusion))
    base.load_state_dict(CreatorModel.random(MICRO, 0).state_dict(), strict=False)
    guided_model = with_settings(base, audio_guidance=3.0)
    plain = MavidCreator(base).new_stream(seed=2).next_clip("hello there", "")
    audio_guided = MavidCreator(guided_model).new_stream(seed=2).next_clip("hello there", "")
    assert np.array_equal(plain.audio, audio_guided.audio)  # the speech is made first
    # with the fusion module the DiT hears the audio, and guidance pushes that further; without
    # it there is nothing to guide on
    assert np.array_equal(plain.frames, audio_guided.frames) != fusion


def test_history_noise_changes_the_clips_after_the_first():
    base = CreatorModel.random(MICRO, 0)
    plain, noised = paired_streams(base, history_noise=0.2)
    first = plain.next_clip("hello there", ""), noised.next_clip("hello there", "")
    assert np.array_equal(first[0].frames, first[1].frames)  # no history yet
    second = plain.next_clip("how are you", ""), noised.next_clip("how are you", "")
    assert not np.array_equal(second[0].frames, second[1].frames)
    # deterministic from the stream's seed
    again = paired_streams(base, history_noise=0.2)[1]
    again.next_clip("hello there", "")
    assert np.array_equal(again.next_clip("how are you", "").frames, second[1].frames)


def test_the_history_anchor_pulls_all_but_the_mouth_to_the_reference():
    import torch

    from mavid.creator.stream import anchor_history
    from mavid.data.faces import mouth_region

    g = torch.Generator().manual_seed(0)
    prev, ref = torch.randn(1, 4, 3, 16, 16, generator=g), torch.randn(1, 4, 1, 16, 16, generator=g)
    rows, cols = mouth_region(16, 16)
    mouth = torch.zeros(16, 16, dtype=torch.bool)
    mouth[rows, cols] = True
    half = anchor_history(prev, ref, 0.5)
    assert torch.equal(half[..., mouth], prev[..., mouth])  # the mouth keeps its history
    assert torch.allclose(half[..., ~mouth], (prev + 0.5 * (ref - prev))[..., ~mouth])
    assert torch.allclose(
        anchor_history(prev, ref, 1.0)[..., ~mouth], ref.expand_as(prev)[..., ~mouth], atol=1e-6
    )
    assert torch.equal(anchor_history(prev, ref, 0.0), prev)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        anchor_history(prev, ref, 1.5)
    with pytest.raises(ValueError, match="grid"):
        anchor_history(prev, ref[..., :8], 0.5)


def test_the_history_anchor_changes_the_clips_after_the_first():
    base = CreatorModel.random(MICRO, 0)
    plain, pulled = paired_streams(base, history_anchor=0.3)
    first = plain.next_clip("hello there", ""), pulled.next_clip("hello there", "")
    assert np.array_equal(first[0].frames, first[1].frames)  # no history yet
    second = plain.next_clip("how are you", ""), pulled.next_clip("how are you", "")
    assert not np.array_equal(second[0].frames, second[1].frames)


def test_speech_from_the_first_codebooks_changes_only_the_audio():
    base = CreatorModel.random(MICRO, 0)
    plain, coarse = paired_streams(base, speech_codebooks=1)
    for text in ("hello there", "how are you"):
        a, b = plain.next_clip(text, ""), coarse.next_clip(text, "")
        assert np.array_equal(a.frames, b.frames)  # the codes and the face are the same
        assert a.audio.shape == b.audio.shape and not np.array_equal(a.audio, b.audio)
    # all of the codec's codebooks is the same as 0
    every = with_settings(base, speech_codebooks=MICRO.creator.num_codebooks)
    same = MavidCreator(every).new_stream(seed=2).next_clip("hello there", "")
    assert np.array_equal(
        same.audio, MavidCreator(base).new_stream(seed=2).next_clip("hello there", "").audio
    )


@pytest.mark.parametrize("count", [-1, 99, 1.0])
def test_a_wrong_count_of_speech_codebooks_is_refused_at_load(count):
    model = CreatorModel(MICRO.replace_creator(speech_codebooks=count))
    with pytest.raises(ValueError, match="speech_codebooks"):
        MavidCreator(model)


def test_a_codec_that_decodes_all_its_codebooks_only_refuses_fewer():
    model = CreatorModel.random(MICRO, 0)
    whole = type("WholeCodec", (type(model.audio_codec),), {"partial_levels": False})
    codec = whole(model.audio_codec.config)
    codec.load_state_dict(model.audio_codec.state_dict())
    MavidCreator(model, audio_codec=codec)  # all codebooks (0): fine
    fewer = with_settings(model, speech_codebooks=1)
    with pytest.raises(ValueError, match="decodes all of its"):
        MavidCreator(fewer, audio_codec=codec)


@pytest.mark.parametrize("expected_speech", [False, True])
def test_bfloat16_path_runs(expected_speech):
    import torch

    model = CreatorModel.random(MICRO.replace_creator(expected_speech=expected_speech), 0)
    model = model.to(torch.bfloat16)
    stream = MavidCreator(model, dtype=torch.bfloat16).new_stream(seed=0)
    clips = [stream.next_clip("half precision", "nod") for _ in range(2)]
    assert clips[1].audio.dtype == np.float32 and clips[1].frames.dtype == np.uint8
    assert clips[1].audio.shape == (SPEC.samples_for_frames(SPEC.clip_frames),)


def test_a_loud_degenerate_decode_is_capped(monkeypatch):
    creator = MavidCreator(CreatorModel.random(MICRO, 0))
    codec = creator.audio_codec
    loud = np.random.default_rng(0).uniform(-1, 1, 10 * 960).astype(np.float32)

    def blast(codes):
        import torch

        return torch.from_numpy(loud[: codes.shape[-1] * 960].copy())

    monkeypatch.setattr(codec, "decode", blast)
    clip = creator.new_stream(seed=0).next_clip("hello", "")
    rms = float(np.sqrt(np.mean(clip.audio**2)))
    assert rms == pytest.approx(MAX_RMS, rel=1e-3)  # was ~0.58
    assert np.abs(clip.audio).max() <= 1.0
