import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from mavid.conductor import M_BOS, M_EOS, DirectiveParser, parse_directives

SPECIALS = [M_BOS, M_EOS, "<|im_end|>", "<|endoftext|>", "<|AUDIO|>", "<", ">", "|", "<m_", "<|"]
_FRAGMENT = re.compile(r"<m_|m_bos>|m_eos>|<\||\|>")


def run(deltas: list[str]) -> tuple[str, str]:
    parser = DirectiveParser()
    out = [d for delta in deltas for d in parser.feed(delta)] + parser.close()
    return "".join(d.speech for d in out), "".join(d.motion for d in out)


def split_at(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


word = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=30)
well_formed = st.builds(
    lambda s, m, end, tail: f"{s}{M_BOS}{m}{M_EOS if end else ''}{'<|im_end|>' if tail else ''}",
    word,
    word,
    st.booleans(),
    st.booleans(),
)
garbage = st.lists(
    st.one_of(st.sampled_from(SPECIALS), st.text(max_size=8), st.just("\ud800\x00\x07")),
    max_size=20,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(well_formed, st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_any_split_equals_one_shot(text: str, cuts: list[int]) -> None:
    assert run(split_at(text, cuts)) == run([text])


@settings(max_examples=300, deadline=None)
@given(garbage, st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_garbage_never_raises_nor_leaks_special_fragments(text: str, cuts: list[int]) -> None:
    speech, motion = run(split_at(text, cuts))
    assert (speech, motion) == run([text])
    for part in (speech, motion):
        assert _FRAGMENT.search(part) is None
        assert not any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 0x20 for c in part)


def test_well_formed_answer() -> None:
    assert parse_directives(f"Hello there!{M_BOS} nods, smiles {M_EOS}<|im_end|>") == (
        "Hello there!",
        "nods, smiles",
    )


def test_token_split_across_deltas_streams_early() -> None:
    parser = DirectiveParser()
    first = parser.feed("Hi you<m_")
    assert [d.speech for d in first] == ["Hi you"]  # emitted before the token completes
    second = parser.feed("bos>wave")
    assert [d.motion for d in second] == ["wave"] and parser.in_motion


def test_missing_m_eos_closes_at_end() -> None:
    assert parse_directives(f"Sure.{M_BOS}shrugs") == ("Sure.", "shrugs")


def test_empty_motion_plain_qa() -> None:
    assert parse_directives(f"Paris is the capital.{M_BOS}{M_EOS}") == ("Paris is the capital.", "")
    assert parse_directives("No markers at all") == ("No markers at all", "")


def test_stray_and_duplicate_tokens() -> None:
    text = f"One{M_EOS} two{M_BOS}tilt{M_BOS} head{M_EOS} ignored after{M_BOS}x"
    assert parse_directives(text) == ("One two", "tilt head")


def test_chat_tokens_dropped_and_partial_token_at_close_dropped() -> None:
    assert parse_directives("Yes<|endoftext|> indeed<|im_end|>") == ("Yes indeed", "")
    assert parse_directives("Yes <m_") == ("Yes", "")


def test_rejects_non_text() -> None:
    parser = DirectiveParser()
    try:
        parser.feed(b"bytes")  # type: ignore[arg-type]
    except TypeError as e:
        assert "str" in str(e)
    else:
        raise AssertionError("bytes accepted")


printable = st.text(
    # (U+FFFD, a byte-level decoder's mark for invalid UTF-8, is dropped by design: tested
    # below; a fresh hypothesis database drew it once)
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Co", "Cn"), blacklist_characters="<>\ufffd"
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(printable, printable, st.lists(st.integers(min_value=0, max_value=100), max_size=6))
def test_well_formed_parses_to_its_parts(speech: str, motion: str, cuts: list[int]) -> None:
    text = f"{speech}{M_BOS}{motion}{M_EOS}<|im_end|>"
    got_speech, got_motion = run(split_at(text, cuts))
    assert " ".join(got_speech.split()) == " ".join(speech.split())
    assert " ".join(got_motion.split()) == " ".join(motion.split())


def test_undecodable_bytes_marker_is_dropped() -> None:
    # What a byte-level decoder yields for tokens that do not form valid UTF-8.
    assert parse_directives("he\ufffdllo<m_bos>no\ufffdd<m_eos>") == ("hello", "nod")
