"""Procedural ambience beds and their level under speech."""

import numpy as np
import pytest

from mavid.data.ambience import AMBIENCES, ambience, mix_under

SR = 24_000


def _band_energy(x, lo, hi):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return spec[(f >= lo) & (f < hi)].sum() / spec.sum()


@pytest.mark.parametrize("kind", [k for k in AMBIENCES if k != "silence"])
def test_beds_are_unit_rms_and_deterministic(kind):
    a = ambience(kind, SR * 2, SR, np.random.default_rng(5))
    b = ambience(kind, SR * 2, SR, np.random.default_rng(5))
    assert a.dtype == np.float32 and a.shape == (SR * 2,)
    assert np.sqrt(np.mean(a**2)) == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_array_equal(a, b)


def test_beds_sound_different():
    rng = np.random.default_rng(0)
    beds = {k: ambience(k, SR * 2, SR, rng) for k in AMBIENCES}
    assert not beds["silence"].any()
    assert _band_energy(beds["rain"], 800, 12000) > 0.5  # hiss
    assert _band_energy(beds["rain"], 2000, 12000) > 5 * _band_energy(beds["room"], 2000, 12000)
    assert _band_energy(beds["room"], 0, 300) > 0.5  # rumble
    assert _band_energy(beds["hum"], 45, 65) > 0.5  # mains hum
    spec = np.abs(np.fft.rfft(beds["music"]))
    assert 150 < np.argmax(spec) * SR / beds["music"].size < 600  # tones in the mid range


def test_mix_under_sets_the_level():
    rng = np.random.default_rng(1)
    speech = (0.2 * np.sin(np.arange(SR) / SR * 2 * np.pi * 200)).astype(np.float32)
    bed = ambience("room", SR, SR, rng)
    mixed = mix_under(speech, bed, -20)
    added = mixed - speech
    ratio = np.sqrt(np.mean(added**2)) / np.sqrt(np.mean(speech**2))
    assert ratio == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match="shape"):
        mix_under(speech, bed[:-1], -20)
    with pytest.raises(ValueError, match="unknown ambience"):
        ambience("jungle", 10, SR, rng)
