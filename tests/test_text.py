"""voicegui.text: sentence splitting for speech and request-sized pieces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from voicegui.text import split_for_request, split_sentences


def _squash(s: str) -> str:
    return "".join(s.split())


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
    ("Mr. Smith met Dr. Jones.", ["Mr. Smith met Dr. Jones."]),
    ("Fruit, e.g. apples, i.e. food. Next.", ["Fruit, e.g. apples, i.e. food.", "Next."]),
    ("Pi is 3.14 exactly. Yes.", ["Pi is 3.14 exactly.", "Yes."]),
    ("J. K. Rowling wrote it. Then.", ["J. K. Rowling wrote it.", "Then."]),
    ("Wait… Really? Well... maybe not.", ["Wait…", "Really?", "Well... maybe not."]),
    ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
    ("(Aside.) Main.", ["(Aside.)", "Main."]),
    ("Visit example.com today. Now.", ["Visit example.com today.", "Now."]),
    ("你好。世界！好吗？是的", ["你好。", "世界！", "好吗？", "是的"]),
    ("No end mark at all", ["No end mark at all"]),
    ("Heading\n\nBody text\nwrapped here.", ["Heading", "Body text wrapped here."]),
    ("  spaced \t out   words.  ", ["spaced out words."]),
    ("", []),
    ("   \n\n  ", []),
    ("...", ["..."]),
    ("Hi 👋🏽. Ok 🎉!", ["Hi 👋🏽.", "Ok 🎉!"]),
])
def test_split_sentences_examples(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_long_sentence_cut_at_clauses_first() -> None:
    text = "one two three, four five six; seven eight: nine — ten eleven"
    assert split_sentences(text, max_chars=20) == [
        "one two three,", "four five six;", "seven eight: nine —", "ten eleven"]


def test_long_clause_cut_at_spaces_and_long_word_anywhere() -> None:
    pieces = split_sentences("alpha beta gamma delta " + "x" * 25, max_chars=10)
    assert pieces == ["alpha beta", "gamma", "delta", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxx"]


def test_thousands_separator_is_not_a_clause() -> None:
    assert split_sentences("We sold 1,000,000 units", max_chars=12) == ["We sold", "1,000,000", "units"]


def test_cjk_clause_marks_cut_without_spaces() -> None:
    pieces = split_sentences("一二三，四五六、七八九", max_chars=5)
    assert pieces == ["一二三，", "四五六、", "七八九"]


def test_bad_limits() -> None:
    with pytest.raises(ValueError):
        split_sentences("x", max_chars=0)
    with pytest.raises(ValueError):
        split_for_request("x", limit=0)


def test_split_for_request_groups_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(400))
    pieces = split_for_request(text)
    assert len(pieces) == 3
    assert all(len(p) <= 4096 for p in pieces)
    assert " ".join(pieces) == text
    # Cuts fall at sentence ends.
    assert all(p.endswith(".") for p in pieces)


def test_split_for_request_short_text_is_one_piece() -> None:
    assert split_for_request("Hello. World.") == ["Hello. World."]


# Words from several scripts, emoji (with modifiers and ZWJ), digits and punctuation; whitespace of
# several kinds between them.
_WORD_CHARS = st.sampled_from(
    list("abcxyzABCXYZ0123456789.,;:!?…—–-'\"()")
    + ["é", "ß", "я", "Ж", "ع", "ש", "क्षि", "ไทย", "ᚠ", "𝔘", "👋🏽", "👩‍👩‍👧", "🎉", "\u200b", "Mr.", "e.g.", "3.14"])
_WORDS = st.lists(st.lists(_WORD_CHARS, min_size=1, max_size=4).map("".join).map(lambda s: s[:12]), max_size=60)
_SPACES = st.sampled_from([" ", "  ", "\n", "\t", "\u00a0", "\n\n", " \u3000 "])


@st.composite
def _texts(draw: st.DrawFn) -> str:
    words = draw(_WORDS)
    out = ""
    for w in words:
        out += w + draw(_SPACES)
    return draw(_SPACES) + out if draw(st.booleans()) else out


@settings(max_examples=300, deadline=None)
@given(text=_texts(), max_chars=st.integers(min_value=12, max_value=80))
def test_property_words_in_order_and_limits(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars)
    assert all(pieces), "no empty pieces"
    assert all(len(p) <= max_chars for p in pieces)
    assert all(p == " ".join(p.split()) for p in pieces), "whitespace normalised"
    # Words are <= 12 chars and have no CJK marks: every cut falls on whitespace.
    assert " ".join(pieces).split() == text.split()


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), max_chars=st.integers(min_value=1, max_value=50))
def test_property_any_text_keeps_its_characters(text: str, max_chars: int) -> None:
    pieces = split_sentences(text, max_chars)
    assert all(pieces)
    assert all(len(p) <= max_chars for p in pieces)
    assert _squash("".join(pieces)) == _squash(text)


@settings(max_examples=200, deadline=None)
@given(text=_texts(), limit=st.integers(min_value=12, max_value=200))
def test_property_split_for_request(text: str, limit: int) -> None:
    pieces = split_for_request(text, limit)
    assert all(pieces)
    assert all(len(p) <= limit for p in pieces)
    assert " ".join(pieces).split() == text.split()
