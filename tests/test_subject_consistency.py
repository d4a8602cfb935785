"""Subject consistency tells a swapped face; dynamic degree tells still from moving."""

import numpy as np
import pytest

from mavid.data.faces import (
    Identity,
    mouth_track,
    render_frames,
    sample_identity,
    states_for_clip,
)
from mavid.data.speech import PhonemeTiming
from mavid.eval.consistency import dynamic_degree, identity_embedding, subject_consistency

PHONES = [PhonemeTiming(p, 0.1 + 0.12 * i, 0.22 + 0.12 * i) for i, p in enumerate("hɛloʊwɜld" * 2)]


def _answer(identity: Identity, motions=(), seed=0, clips=3):
    out = []
    for j in range(clips):
        mouth = mouth_track(PHONES, 25, 25, offset=float(j))
        states = states_for_clip(25, 25, mouth, motions, seed=seed, start=float(j))
        out.append(render_frames(identity, states))
    return out


@pytest.fixture(scope="module")
def people():
    rng = np.random.default_rng(7)
    return sample_identity(rng), sample_identity(rng)


def test_same_face_is_consistent_and_a_swapped_face_is_not(people):
    a, b = people
    good = subject_consistency(_answer(a))
    assert good.frames > 0.9 and good.clips > 0.9
    clips = _answer(a)
    clips[2] = _answer(b, clips=1)[0]
    swapped = subject_consistency(clips)
    assert swapped.clips < good.clips - 0.3
    assert swapped.worst_clip < 0.5
    assert swapped.frames < good.frames - 0.05
    # against a reference image of the right and of the wrong person
    ref = _answer(a, clips=1)[0][0]
    assert subject_consistency(_answer(a, clips=2), reference=ref).clips > 0.9
    assert subject_consistency(_answer(b, clips=2), reference=ref).clips < 0.5


def test_embeddings_are_unit_and_centred(people):
    a, b = people
    e = identity_embedding(np.concatenate([_answer(a, clips=1)[0][:2], _answer(b, clips=1)[0][:2]]))
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.9 and abs(e[0] @ e[2]) < 0.6


def test_dynamic_degree_orders_still_talking_and_moving(people):
    a, _ = people
    still = [np.repeat(_answer(a, clips=1)[0][:1], 25, axis=0)]
    talking = _answer(a, clips=2)
    moving = _answer(a, motions=("shake", "wave"), clips=2)
    d_still, d_talk, d_move = (dynamic_degree(c) for c in (still, talking, moving))
    assert d_still.motion == 0.0 and d_still.degree == 0.0
    assert d_talk.motion > 0
    assert d_move.motion > 1.5 * d_talk.motion
    assert d_move.degree >= d_talk.degree
    with pytest.raises(ValueError, match="at least 2"):
        dynamic_degree([still[0][:1]])
    with pytest.raises(ValueError, match="non-empty"):
        subject_consistency([])
