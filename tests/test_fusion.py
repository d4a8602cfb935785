"""The attention pattern of Eq. 6/7, checked by perturbing inputs and watching outputs."""

import dataclasses

import numpy as np
import pytest
import torch

from mavid.codecs.delay_pattern import wrap_clip
from mavid.config import MICRO
from mavid.creator.audio_decoder import SamplingConfig
from mavid.creator.fusion import (
    VideoFromAudio,
    audio_frame_columns,
    fa_windows,
    fv_select,
    latent_window,
)
from mavid.creator.model import CreatorModel
from mavid.creator.text import encode_text

K = MICRO.creator.num_codebooks


def micro(**changes) -> CreatorModel:
    return CreatorModel.random(
        dataclasses.replace(MICRO, creator=dataclasses.replace(MICRO.creator, **changes)), 0
    )


def test_fa_maps_each_latent_to_the_first_four_token_frames_of_its_window():
    idx, valid = fa_windows(7, 25, 4, 4)
    assert idx[0][valid[0]].tolist() == [0]  # latent 0 = frame 0 alone
    assert idx[1][valid[1]].tolist() == [1, 2, 3, 4]
    assert idx[6][valid[6]].tolist() == [21, 22, 23, 24]
    idx2, valid2 = fa_windows(7, 25, 2, 4)  # fewer tokens: the first ones of the window
    assert idx2[3][valid2[3]].tolist() == [9, 10]
    assert latent_window(3, 4) == (9, 13)
    assert audio_frame_columns(3, 8).tolist() == [8, 9, 10]


def test_fv_keeps_the_last_ten_latents_or_all_when_fewer():
    tokens = torch.arange(12 * 4).view(1, 48, 1).float()  # 12 latents x 4 tokens
    assert fv_select(tokens, 12, 10)[0, :, 0].tolist() == list(range(8, 48))
    short = tokens[:, :28]  # 7 latents
    assert torch.equal(fv_select(short, 7, 10), short)


def test_video_audio_ca_sees_only_the_latents_window():
    torch.manual_seed(0)
    ca = VideoFromAudio(video_dim=16, audio_dim=8, heads=2, eps=1e-6)
    t, p, f = 3, 4, 9
    x = torch.randn(1, t * p, 16)
    audio = torch.randn(1, f, 8)
    idx, valid = fa_windows(t, f, 4, 4)
    base = ca(x, ca.context(audio, idx, valid), t).view(t, p, 16)
    for frame in range(f):
        bumped = audio.clone()
        bumped[:, frame] += 3.0
        out = ca(x, ca.context(bumped, idx, valid), t).view(t, p, 16)
        for i in range(t):
            start, end = latent_window(i, 4)
            inside = start <= frame < end
            assert torch.allclose(out[i], base[i]) != inside, (frame, i)


def _teacher_forced_sources(model, codes):
    """Audio stack over [T_speech ∘ a_j] (no history): per-layer hidden states of each column."""
    cfg = model.cfg
    text = torch.tensor([encode_text("hi", cfg.max_text_len)])
    cols = wrap_clip(codes, cfg.stream_bos, cfg.stream_eos)[None]
    x = torch.cat([model.audio.prefix(text, None), model.audio.embed_columns(cols[:, :, :-1])], 1)
    _, streams = model.audio.run(x, 0, None, None, None)
    start = text.shape[1]
    return [s[:, start + audio_frame_columns(codes.shape[1], K)] for s in streams]


@torch.inference_mode()
def test_video_latent_sees_audio_only_through_fa():
    model = micro(num_layers=1)
    f, t = 9, 3
    codes = torch.randint(0, 64, (K, f), generator=torch.Generator().manual_seed(1))
    z = torch.randn(1, 4, t, 4, 4)
    times = torch.full((1, t), 0.7)
    text_kv = model.motion_kv(["nod"])

    def velocity(c):
        ctx = model.audio_context(_teacher_forced_sources(model, c), t)
        return model.video(z, times, None, text_kv, ctx)

    base = velocity(codes)
    # latent 1 covers audio frames 1..4; its F_a states are at delayed columns up to 4 + K, which
    # (causal AR) read codebook 0 of frames up to 4 + K - 1 = 7. Frame 8 is beyond: no effect.
    late = codes.clone()
    late[:, 8] = (late[:, 8] + 1) % 64
    out = velocity(late)
    assert torch.equal(out[:, :, 1], base[:, :, 1]) and torch.equal(out[:, :, 0], base[:, :, 0])
    assert not torch.equal(out[:, :, 2], base[:, :, 2])  # latent 2's window reads it
    inside = codes.clone()
    inside[:, 2] = (inside[:, 2] + 1) % 64
    assert not torch.equal(velocity(inside)[:, :, 1], base[:, :, 1])


@torch.inference_mode()
def test_audio_is_causal():
    model = micro()
    x = torch.randn(1, 12, model.cfg.audio_dim)
    base, _ = model.audio.run(x, 0, None, None, None)
    bumped = x.clone()
    bumped[:, 7] += 1.0
    out, _ = model.audio.run(bumped, 0, None, None, None)
    assert torch.equal(out[:, :7], base[:, :7])
    assert not torch.allclose(out[:, 7:], base[:, 7:])


def _audio_codes(model, prev_latents, seed=0):
    _, fv_kv = model.video_history(prev_latents)
    text = torch.tensor([encode_text("hello", model.cfg.max_text_len)])
    return model.audio.generate(
        text, None, 9, fv_kv, SamplingConfig(1.0, 0, 1.0), torch.Generator().manual_seed(seed)
    ).cols


@pytest.mark.parametrize("fusion", [True, False])
@torch.inference_mode()
def test_audio_sees_previous_video_only_with_fusion(fusion):
    model = micro(fusion=fusion)
    prev_a = torch.randn(1, 4, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    prev_b = prev_a + 2.0 * torch.randn(prev_a.shape, generator=torch.Generator().manual_seed(6))
    # same sampling seed: the codes differ only if the previous video reaches the audio (F_v)
    differ = not torch.equal(_audio_codes(model, prev_a), _audio_codes(model, prev_b))
    assert differ == fusion
    if not fusion:
        assert all(blk.fuse_video is None for blk in model.audio.blocks)
        assert all(blk.fuse_audio is None for blk in model.video.blocks)


@torch.inference_mode()
def test_audio_clip_j_never_sees_video_clip_j():
    from mavid.creator.stream import MavidCreator

    creator = MavidCreator(micro())
    first = creator.new_stream(seed=3)
    second = creator.new_stream(seed=3)
    a = first.next_clip("same words", "wave the left hand")
    b = second.next_clip("same words", "a completely different motion")
    # the motion directive only reaches clip j's video, which audio clip j must not see
    assert torch.equal(torch.from_numpy(a.audio), torch.from_numpy(b.audio))
    assert not (a.frames == b.frames).all()


@torch.inference_mode()
def test_video_sees_previous_clip_and_dit_output_uses_prefix():
    model = micro()
    z = torch.randn(1, 4, 3, 4, 4)
    t = torch.full((1, 3), 0.5)
    kv = model.motion_kv(["smile"])
    p1, _ = model.video_history(torch.randn(1, 4, 3, 4, 4))
    p2, _ = model.video_history(torch.randn(1, 4, 3, 4, 4))
    assert not torch.equal(model.video(z, t, p1, kv, None), model.video(z, t, p2, kv, None))


@torch.inference_mode()
def test_an_anchored_dit_sees_the_reference_in_every_clip_and_the_audio_never_does():
    model = micro()  # MICRO anchors, as the tiny preset
    z, t = torch.randn(1, 4, 3, 4, 4), torch.full((1, 3), 0.5)
    kv = model.motion_kv(["smile"])
    prev = torch.randn(1, 4, 3, 4, 4)
    ref_a, ref_b = torch.randn(1, 4, 1, 4, 4), torch.randn(1, 4, 1, 4, 4)
    pa, fv_a = model.video_history(prev, ref_a)
    pb, _ = model.video_history(prev, ref_b)
    assert pa.num_latents == 4 and pa.history_latents == 3
    assert pa.streams[0].shape[1] == 3 * 4  # F_v's source: v_{j-1}'s tokens only
    assert not torch.equal(model.video(z, t, pa, kv, None), model.video(z, t, pb, kv, None))
    # F_v reads v_{j-1} after its SA, which also saw the reference: only the video side may
    # change with it, so compare what the audio receives without the reference in the prefix
    unanchored = micro(reference_anchor=False)
    unanchored.load_state_dict(model.state_dict())
    pu, fv_u = unanchored.video_history(prev, ref_a)
    pv, _ = unanchored.video_history(prev, None)
    assert pu.num_latents == 3 and torch.equal(pu.kv[0][0], pv.kv[0][0])  # ignored
    assert fv_a is not None and fv_u is not None
    # a first clip has the reference alone: a prefix for the DiT, no F_v for the audio
    first, fv = model.video_history(None, ref_a)
    assert first.num_latents == 1 and first.history_latents == 0 and fv is None
    assert unanchored.video_history(None, ref_a) == (None, None)


@torch.inference_mode()
def test_an_anchored_streams_first_audio_clip_does_not_depend_on_the_reference():
    from mavid.creator.stream import MavidCreator

    creator = MavidCreator(micro())
    face_a = np.full((32, 32, 3), 40, np.uint8)
    face_b = np.full((32, 32, 3), 220, np.uint8)
    a, b = creator.new_stream(face_a, seed=1), creator.new_stream(face_b, seed=1)
    clips_a = [a.next_clip("same words", "smile") for _ in range(3)]
    clips_b = [b.next_clip("same words", "smile") for _ in range(3)]
    # the first clip's audio has no video history at all; later clips' F_v reads v_{j-1},
    # whose pixels differ between the streams, so only the first is compared
    assert np.array_equal(clips_a[0].audio, clips_b[0].audio)
    # the faces reach the video (latents: the micro VAE's random decoder rounds small changes
    # away in pixels)
    assert not torch.equal(a.history.video_latents, b.history.video_latents)
