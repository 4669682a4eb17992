"""hibari's G2P over packed tables (voicegui.server.engines.hibari_g2p) reads text exactly as hibari's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicegui.server.engines import hibari as hibari_mod

if hibari_mod.missing():
    pytest.skip(hibari_mod.missing(), allow_module_level=True)

from hibari.g2p import G2P

from voicegui.server.engines.hibari_g2p import CompactG2P, CompactLexicon, load_asset

ROOT = Path(__file__).resolve().parents[2]

# What the lexicons read by part of speech or context, numbers, money, abbreviations, unknown words, symbols.
TRICKY = [
    "I read the book yesterday; now I read it again.", "They live here and the show is live.",
    "Record the record.", "I used to go; he used it.", "The Dr. lives on St. James St. in the U.S.A.",
    "On the 3rd of March 2024, 1,250 people paid $9.99 each, or £3.50, at 7:30 pm.",
    "Zorblaxian flumpers quaffed 42% of the glorp & the snarf @ home.", "An apple a day; A is for AM radio.",
    "It's the 1990s; she's 25 and he'd've come.", "Hello, World! Are you there?", "x = y + 2 - 3",
    "THE END.", "Mr. O'Neill's co-operation was well-known — truly.",
]


def corpus() -> list[str]:
    text = (ROOT / "README.md").read_text() + (ROOT / "docs" / "architecture.md").read_text()
    return TRICKY + [s for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


@pytest.fixture(scope="module")
def both() -> tuple[G2P, CompactG2P]:
    return G2P(), CompactG2P()


def test_the_phonemes_are_hibaris_own(both):
    theirs, ours = both
    sentences = corpus()
    assert len(sentences) > 500
    differ = [(s, theirs(s), ours(s)) for s in sentences if theirs(s) != ours(s)]
    assert not differ, differ[:3]


def test_tags_are_hibaris_own(both):
    theirs, ours = both
    for sentence in corpus():
        words = sentence.split()
        assert ours.tagger(words) == theirs.tagger(words), sentence


def test_the_lexicon_answers_like_the_dict_it_packs():
    words = load_asset("lexicon_us_gold.json.gz")
    packed = CompactLexicon(words)
    assert len(packed) == len(words)
    for word, reading in list(words.items())[::97]:
        assert packed.get(word) == reading
    by_tag = [w for w, r in words.items() if isinstance(r, dict)]
    assert by_tag and all(packed.get(w) == words[w] for w in by_tag)
    for absent in ("", "zzzzqx", "Zorblaxian", "the ", "THE"):
        assert packed.get(absent) == words.get(absent)
