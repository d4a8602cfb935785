"""espeak-ng through ctypes: audio at the preset's rate, word/phoneme timing, voices, errors."""

import threading

import numpy as np
import pytest

from mavid.data.speech import Voice, resample, synthesize, voice_variants

TEXT = "The paintings are on the second floor. I am calling the café."


def test_audio_is_24k_float_and_words_cover_the_text_in_order():
    u = synthesize(TEXT, Voice("en-us+m3", rate=170))
    assert u.sample_rate == 24_000 and u.audio.dtype == np.float32 and u.audio.ndim == 1
    assert 2.0 < u.duration < 8.0
    assert 0.05 < float(np.abs(u.audio).max()) <= 1.0
    # espeak merges "on the" / "I am" into one WORD event: every word must still be there
    assert [w.word for w in u.words] == [
        "The",
        "paintings",
        "are",
        "on",
        "the",
        "second",
        "floor",
        "I",
        "am",
        "calling",
        "the",
        "café",
    ]
    starts = [w.start for w in u.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= u.duration + 1e-6 for w in u.words)
    # phonemes arrive in IPA and in time order
    assert len(u.phonemes) > 20
    assert any("ɛ" in p.ipa or "ə" in p.ipa for p in u.phonemes)
    assert [p.start for p in u.phonemes] == sorted(p.start for p in u.phonemes)


def test_word_timing_matches_the_audio():
    u = synthesize("Hello. Goodbye.", Voice("en-us+f2"))
    # loud where a word is spoken, quiet in the pause between the two sentences
    hello, bye = u.words
    gap = u.audio[int((hello.end - 0.2) * 24000) : int(bye.start * 24000)]
    word = u.audio[int(bye.start * 24000) : int(bye.end * 24000)]
    assert np.sqrt(np.mean(word**2)) > 3 * np.sqrt(np.mean(gap[-2400:] ** 2))


def test_voices_differ_and_are_deterministic():
    a = synthesize("Where is the cloakroom?", Voice("en-us+m1", pitch=30))
    b = synthesize("Where is the cloakroom?", Voice("en-us+f3", pitch=70))
    a2 = synthesize("Where is the cloakroom?", Voice("en-us+m1", pitch=30))
    np.testing.assert_array_equal(a.audio, a2.audio)
    n = min(a.audio.size, b.audio.size)
    assert a.audio.size != b.audio.size or not np.allclose(a.audio[:n], b.audio[:n])
    assert len(voice_variants()) >= 100


def test_threads_share_the_engine_safely():
    want = {i: synthesize(f"Number {i} please.", Voice("en-us+m2")).audio for i in range(4)}
    got = {}

    def run(i):
        got[i] = synthesize(f"Number {i} please.", Voice("en-us+m2")).audio

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_array_equal(got[i], want[i])


def test_bad_input_gets_clear_errors():
    with pytest.raises(ValueError, match="non-empty"):
        synthesize("   ")
    with pytest.raises(ValueError, match="no voice"):
        synthesize("hello", Voice("xx-nope+m9"))
    with pytest.raises(ValueError, match="rate"):
        Voice(rate=20)
    with pytest.raises(ValueError, match="pitch"):
        Voice(pitch=130)
    # the engine still works after an error
    assert synthesize("Still here.").duration > 0.3


def test_resample_keeps_pitch_and_length():
    sr = 22_050
    t = np.arange(sr) / sr
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = resample(tone, sr, 24_000)
    assert out.size == 24_000 and out.dtype == np.float32
    spec = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spec) * 24_000 / out.size - 1000) < 3
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 10), np.float32), sr, 24_000)


def test_a_crossed_variant_is_made_of_its_donors_settings_and_speaks():
    from mavid.data.speech import add_variants, crossed_variant, variant_settings

    donors = ["m1", "f2", "klatt", "croak"]
    text = crossed_variant(donors, np.random.default_rng(3))
    assert text == crossed_variant(donors, np.random.default_rng(3))  # reproducible
    lines = [ln for ln in text.splitlines() if ln not in ("language variant", "name crossed")]
    lines_of = {
        d: {f"{k} {' '.join(v)}".strip() for k, v in variant_settings(d).items()} for d in donors
    }
    assert lines and set(lines) <= set.union(*lines_of.values())
    assert not any(ln.startswith(("echo", "name ", "language ")) for ln in lines)
    # settings from several donors: a voice none of them is
    owners = [{d for d in donors if ln in lines_of[d]} for ln in lines]
    assert len(set.union(*owners)) >= 2
    add_variants({"t_cross": text})
    add_variants({"t_cross": text})  # again, the same: nothing to do
    said = synthesize("Where is the cloakroom?", Voice("en-us+t_cross"))
    assert said.audio.size > 12_000 and np.abs(said.audio).max() > 0.05
    for donor in donors:
        other = synthesize("Where is the cloakroom?", Voice(f"en-us+{donor}")).audio
        n = min(other.size, said.audio.size)
        assert other.size != said.audio.size or not np.allclose(other[:n], said.audio[:n])
    # the shipped voices still speak as before beside the added ones
    np.testing.assert_array_equal(
        synthesize(TEXT, Voice("en-us+m1")).audio, synthesize(TEXT, Voice("en-us+m1")).audio
    )


def test_added_variants_are_checked(monkeypatch):
    import mavid.data.speech as speech

    text = "language variant\nname x\npitch 80 120\n"
    for bad in ("", "a b", "../m1", "x" * 25, 7):
        with pytest.raises(ValueError, match="letters, digits"):
            speech.add_variants({bad: text})
    with pytest.raises(ValueError, match="already ships"):
        speech.add_variants({"m1": text})
    speech.add_variants({"t_checked": text})
    with pytest.raises(ValueError, match="other settings"):
        speech.add_variants({"t_checked": text + "voicing 50\n"})
    monkeypatch.setattr(speech, "MAX_EXTRA_VARIANTS", len(speech._extra_variants))
    with pytest.raises(ValueError, match="at most"):
        speech.add_variants({"t_one_too_many": text})
