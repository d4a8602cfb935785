"""Drawn talking heads: identity, visemes, blinks, motions, determinism."""

import numpy as np
import pytest
from PIL import Image

from mavid.data.faces import (
    MOTIONS,
    FaceState,
    Identity,
    mouth_track,
    parse_motion,
    render_face,
    render_frames,
    render_reference_face,
    sample_identity,
    states_for_clip,
    viseme,
)
from mavid.data.speech import PhonemeTiming

MOUTH = (slice(70, 100), slice(44, 84))  # rows, cols of the mouth at 128x128
EYES = (slice(40, 62), slice(30, 98))


def test_frame_shape_and_determinism():
    idt = sample_identity(np.random.default_rng(1))
    a = render_face(idt, FaceState(mouth_open=0.5))
    b = render_face(idt, FaceState(mouth_open=0.5))
    assert a.shape == (128, 128, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert render_face(idt, FaceState(), size=64).shape == (64, 64, 3)


def test_identities_differ():
    rng = np.random.default_rng(2)
    faces = [render_reference_face(sample_identity(rng)) for _ in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(faces[i].astype(int) - faces[j].astype(int)).mean() > 10


def test_mouth_opening_changes_the_mouth_and_blink_the_eyes():
    idt = Identity()
    closed = render_face(idt, FaceState()).astype(int)
    opened = render_face(idt, FaceState(mouth_open=0.9)).astype(int)
    diff = np.abs(opened - closed).sum(-1)
    assert diff[MOUTH].sum() > 0.9 * diff.sum() > 0
    blink = render_face(idt, FaceState(blink=1.0)).astype(int)
    bd = np.abs(blink - closed).sum(-1)
    assert bd[EYES].sum() > 0.9 * bd.sum() > 0


def test_reference_face_looks_like_a_face(tmp_path):
    # eyes (white sclera + dark pupils) and a skin-coloured face in the middle
    idt = Identity(skin=(224, 172, 128))
    img = render_reference_face(idt)
    centre = img[40:100, 40:88].reshape(-1, 3).astype(int)
    skin = np.abs(centre - np.array(idt.skin)).sum(1) < 30
    assert skin.mean() > 0.3
    eyes = img[EYES].reshape(-1, 3)
    assert (eyes.min(1) > 235).sum() > 10 and (eyes.max(1) < 40).sum() > 5
    Image.fromarray(img).save(tmp_path / "face.png")  # stays viewable


def test_visemes_and_mouth_track():
    assert viseme("p") == (0.0, 0.1)
    assert viseme("ˈɑː")[0] > 0.8
    assert viseme("uː")[1] > 0.8
    assert viseme("tʃ") == viseme("ʃ")
    phones = [PhonemeTiming("m", 0.20, 0.30), PhonemeTiming("ˈɑː", 0.30, 0.60)]
    track = mouth_track(phones, 25, 25)
    assert track.shape == (25, 2)
    assert track[:3, 0].max() == 0.0  # silence before speech: closed
    assert track[10, 0] > 0.7  # inside the vowel
    assert track[-1, 0] == 0.0


def test_parse_motion():
    assert parse_motion("nod, smile") == ("nod", "smile")
    assert parse_motion("") == ()
    assert parse_motion(" Look Away ;wave") == ("look away", "wave")
    with pytest.raises(ValueError, match="unknown motion"):
        parse_motion("nod, backflip")
    assert set(MOTIONS) == {"nod", "shake", "tilt", "smile", "look away", "wave"}


def test_motions_move_the_head_and_clips_stay_continuous():
    still = states_for_clip(50, 25, seed=3)
    nod = states_for_clip(50, 25, motions=("nod",), seed=3)
    assert np.std([s.head_dy for s in nod]) > 2 * np.std([s.head_dy for s in still])
    shake = states_for_clip(50, 25, motions=("shake",), seed=3)
    assert np.ptp([s.yaw for s in shake]) > 0.5
    assert max(s.smile for s in states_for_clip(25, 25, motions=("smile",))) == 1.0
    assert max(s.wave for s in states_for_clip(50, 25, motions=("wave",))) > 0.9
    # two clips cut from one answer equal the answer made at once (blinks and sway continue)
    first = states_for_clip(25, 25, motions=("nod",), seed=9)
    second = states_for_clip(25, 25, motions=("nod",), seed=9, start=1.0)
    whole = states_for_clip(50, 25, motions=("nod",), seed=9)
    for a, b in zip(first + second, whole, strict=True):
        assert a.head_dy == pytest.approx(b.head_dy) and a.blink == pytest.approx(b.blink)
    assert any(s.blink > 0.5 for s in states_for_clip(250, 25, seed=1))


def test_render_frames_and_bad_input():
    idt = Identity()
    frames = render_frames(idt, states_for_clip(5, 25))
    assert frames.shape == (5, 128, 128, 3)
    assert render_frames(idt, []).shape == (0, 128, 128, 3)
    with pytest.raises(ValueError, match="mouth track shape"):
        states_for_clip(5, 25, mouth=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="hair style"):
        Identity(hair_style="mohawk")
