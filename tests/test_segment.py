import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mavid.segment import ClipSegmenter


def segment(deltas: list[str], seg: ClipSegmenter | None = None) -> list[str]:
    seg = seg or ClipSegmenter()
    out = [p for d in deltas for p in seg.feed(d)]
    return out + seg.flush()


texty = st.text(alphabet=st.sampled_from(list("abc ,.!\n\t")), max_size=120)


@settings(max_examples=300, deadline=None)
@given(texty, st.lists(st.integers(min_value=0, max_value=130), max_size=12))
def test_prompts_concatenate_to_normalized_speech(text: str, cuts: list[int]) -> None:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    deltas = [text[a:b] for a, b in itertools.pairwise(bounds)]
    prompts = segment(deltas)
    assert " ".join(prompts) == " ".join(text.split())
    assert all(p and p == p.strip() for p in prompts)


def test_clip_sizes_follow_the_schedule() -> None:
    words = " ".join(f"w{i}" for i in range(20))
    sizes = [len(p.split()) for p in segment([words])]
    # first clip ~0.5 s (1.5 words -> 1), then 2.5 words per 1-s clip on average
    assert sizes[0] == 1
    assert sum(sizes) == 20
    assert sizes[1:5] == [3, 2, 3, 2]


def test_prompts_emitted_incrementally_and_whole_words_only() -> None:
    seg = ClipSegmenter()
    assert seg.feed("Hel") == []
    assert seg.feed("lo wor") == []  # "Hello" complete, but one word of look-ahead is pending
    assert seg.feed("ld and") == ["Hello"]


def test_prefers_punctuation() -> None:
    seg = ClipSegmenter(words_per_clip=3, first_clip_words=3)
    assert seg.feed("I see, that is fine ") == ["I see,"]  # cut one word early at the comma


def test_flush_resets_for_next_turn() -> None:
    seg = ClipSegmenter()
    assert segment(["a b c d e"], seg)[0] == "a"
    assert segment(["x y z"], seg)[0] == "x"


def test_bad_config() -> None:
    with pytest.raises(ValueError, match="words_per_clip"):
        ClipSegmenter(words_per_clip=0)
