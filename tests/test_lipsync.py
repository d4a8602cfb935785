"""Lip-sync meter: the frozen mouth regressor and the +/-15 frame offset search."""

import numpy as np
import pytest

from mavid.data.dialogue import plan_sample, render_sample
from mavid.eval.lipsync import (
    WEIGHTS,
    audio_envelope,
    lip_sync,
    load_mouth_regressor,
    mouth_crop,
    mouth_opening,
    sync_offset,
)


@pytest.fixture(scope="module")
def sample():
    plan = next(
        p
        for p in (plan_sample(3, i, ("wifi", "parking", "cloakroom")) for i in range(40))
        if p.ambience == "silence"
    )
    return render_sample(plan, 3)


@pytest.fixture(scope="module")
def model():
    return load_mouth_regressor()


def test_offset_search_finds_a_known_shift():
    rng = np.random.default_rng(0)
    base = np.convolve(rng.standard_normal(140), np.ones(4) / 4, mode="same")
    for k in (-9, 0, 4, 15):
        env = np.roll(base, k)
        res = sync_offset(base[20:120], env[20:120])
        assert res.offset == k
        assert res.correlation > 0.95 and res.confidence > 0.5
        assert len(res.correlations) == 31
    with pytest.raises(ValueError, match="at least"):
        sync_offset(base[:20], base[:20])
    with pytest.raises(ValueError, match="equal"):
        sync_offset(base[:50], base[:49])


def test_regressor_reads_the_mouth(sample, model):
    assert WEIGHTS.stat().st_size < 1_000_000  # shipped small
    pred = mouth_opening(sample.frames, model)
    assert pred.shape == (sample.frames.shape[0],)
    assert np.corrcoef(pred, sample.mouth[:, 0])[0, 1] > 0.85
    assert np.abs(pred - sample.mouth[:, 0]).mean() < 0.12


def test_ground_truth_is_in_sync_and_shifted_audio_moves_the_offset(sample, model):
    sr, fps = sample.sample_rate, sample.fps
    good = lip_sync(sample.frames, sample.speech_audio, sr, fps, model)
    assert abs(good.offset) <= 1 and good.confidence > 0.2
    shift = 5 * sr // fps
    late = np.concatenate([np.zeros(shift, np.float32), sample.speech_audio[:-shift]])
    moved = lip_sync(sample.frames, late, sr, fps, model)
    assert moved.offset - good.offset in (4, 5, 6)
    early = np.concatenate([sample.speech_audio[shift:], np.zeros(shift, np.float32)])
    assert lip_sync(sample.frames, early, sr, fps, model).offset - good.offset in (-6, -5, -4)


def test_envelope_and_bad_input(tmp_path, sample):
    env = audio_envelope(sample.speech_audio, 24_000, 25, sample.frames.shape[0])
    assert env.shape == (sample.frames.shape[0],)
    assert env[:2].max() < env.max() - 2  # the lead-in is silent
    with pytest.raises(ValueError, match="128, 128, 3"):
        mouth_crop(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="train it"):
        load_mouth_regressor(tmp_path / "missing.safetensors")
