"""Timbre consistency with resemblyzer's speaker encoder (weights ship in its wheel)."""

import numpy as np
import pytest

from mavid.data.speech import Voice, synthesize
from mavid.eval.timbre import TimbreMeter

SR = 24_000
TEXT = (
    "The museum opened in eighteen ninety two in a former railway station. "
    "The great hall still has the original iron roof and the station clock."
)


def _clips(audio):
    return [audio[i : i + SR] for i in range(0, audio.size - SR // 2, SR)]


@pytest.fixture(scope="module")
def meter():
    return TimbreMeter()


def test_same_voice_is_consistent_and_a_swapped_voice_is_not(meter):
    a = _clips(synthesize(TEXT, Voice("en-us+m3", pitch=40)).audio)
    b = _clips(synthesize(TEXT, Voice("en-us+f4", pitch=75)).audio)
    good = meter.consistency(a[:5], SR)
    swapped = meter.consistency(a[:3] + b[3:5], SR)
    assert good.clips_used == 5
    assert good.consistency > 0.7
    assert swapped.consistency < good.consistency - 0.08
    assert swapped.worst < good.worst - 0.1


def test_silent_clips_are_skipped_and_too_few_raise(meter):
    a = _clips(synthesize(TEXT, Voice("en-us+m3")).audio)
    silent = [np.zeros(SR, np.float32)] * 2
    res = meter.consistency(a[:3] + silent, SR)
    assert res.clips_used == 3
    assert meter.embed(np.zeros(SR, np.float32), SR) is None
    with pytest.raises(ValueError, match="at least 2"):
        meter.consistency(a[:1] + silent, SR)
    e = meter.embed(a[0], SR)
    assert e.shape == (256,) and abs(np.linalg.norm(e) - 1) < 1e-3
