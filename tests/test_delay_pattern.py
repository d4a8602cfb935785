from types import SimpleNamespace

import hypothesis.strategies as st
import torch
from hypothesis import given, settings
from transformers import HiggsAudioV2Processor

from mavid.codecs.delay_pattern import (
    build_delay_pattern,
    data_mask,
    revert_delay_pattern,
    unwrap_clip,
    wrap_clip,
)

BOS, EOS = 1024, 1025
HF = SimpleNamespace(audio_stream_bos_id=BOS, audio_stream_eos_id=EOS)


def codes_strategy():
    return st.tuples(st.integers(1, 8), st.integers(1, 30), st.integers(0, 2**31 - 1)).map(
        lambda a: torch.randint(
            0, 1024, (a[0], a[1]), generator=torch.Generator().manual_seed(a[2])
        )
    )


@settings(max_examples=60, deadline=None)
@given(codes_strategy())
def test_round_trip(codes):
    k, t = codes.shape
    delayed = build_delay_pattern(codes, BOS, EOS)
    assert delayed.shape == (k, t + k - 1)
    assert torch.equal(revert_delay_pattern(delayed), codes)
    assert torch.equal(unwrap_clip(wrap_clip(codes, BOS, EOS)), codes)


@settings(max_examples=40, deadline=None)
@given(codes_strategy())
def test_equal_to_transformers(codes):
    ours = build_delay_pattern(codes, BOS, EOS)
    theirs = HiggsAudioV2Processor.build_delay_pattern(HF, codes[None])[0]
    assert torch.equal(ours, theirs)
    # transformers reverts a (L, K) layout and returns (T, K)
    assert torch.equal(
        revert_delay_pattern(ours), HiggsAudioV2Processor.revert_delay_pattern(HF, theirs.T).T
    )


def test_layout_is_shifted_with_bos_before_and_eos_after():
    codes = torch.arange(12).view(3, 4)
    d = build_delay_pattern(codes, BOS, EOS)
    assert d[0].tolist() == [0, 1, 2, 3, EOS, EOS]
    assert d[2].tolist() == [BOS, BOS, 8, 9, 10, 11]


def test_wrapped_clip_and_data_mask():
    k, f = 8, 25
    codes = torch.randint(0, 1024, (k, f))
    w = wrap_clip(codes, BOS, EOS)
    assert w.shape == (k, f + k + 1)
    assert (w[:, 0] == BOS).all() and (w[:, -1] == EOS).all()
    mask = data_mask(k, f)
    assert mask.sum() == k * f
    assert (w[mask] < 1024).all() and (w[~mask] >= 1024).all()
    assert sorted(w[mask].tolist()) == sorted(codes.flatten().tolist())
