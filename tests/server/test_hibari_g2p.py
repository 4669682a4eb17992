"""hibari's G2P over packed tables (voicegui.server.engines.hibari_g2p) reads text exactly as hibari's own,
whether the tables were just built or read back from the cache (hibari_tables.py)."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from voicegui.server.engines import hibari as hibari_mod

if hibari_mod.missing():
    pytest.skip(hibari_mod.missing(), allow_module_level=True)

from hibari.g2p import G2P

from voicegui.server.engines import hibari_g2p, hibari_tables
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


@pytest.fixture(scope="module")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("engines")
    CompactG2P.cached(directory)
    return directory


@pytest.fixture()
def cache(built_once: Path, tmp_path: Path) -> Path:
    """A cache directory of this test's own, holding the tables as a first start wrote them."""
    return Path(shutil.copytree(built_once, tmp_path / "engines"))


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
    packed = CompactLexicon(CompactLexicon.pack(words, "gold"), "gold")
    assert len(packed) == len(words)
    for word, reading in list(words.items())[::97]:
        assert packed.get(word) == reading
    by_tag = [w for w, r in words.items() if isinstance(r, dict)]
    assert by_tag and all(packed.get(w) == words[w] for w in by_tag)
    for absent in ("", "zzzzqx", "Zorblaxian", "the ", "THE"):
        assert packed.get(absent) == words.get(absent)


def test_tables_read_from_the_cache_are_the_tables_built(both, tmp_path):
    """Array for array, so the corpus tests above hold for a G2P read from the cache too."""
    built = both[1]
    hibari_tables.write(tmp_path / "t", built.parts())
    parts = hibari_tables.read(tmp_path / "t")
    assert parts is not None
    again = CompactG2P.from_parts(parts).parts()
    expected = built.parts()
    assert again.keys() == expected.keys() and len(expected) > 15
    for name, array in expected.items():
        assert again[name].dtype == array.dtype and (again[name] == array).all(), name


def test_the_mapped_tables_read_like_hibari(both, cache):
    """The tables as a later start has them (memory-mapped files) give hibari's phonemes, and are not copied
    into memory: each table the G2P looks up is the mapped file's own buffer."""
    theirs = both[0]
    parts = hibari_tables.read(_cached_tables(cache))
    assert parts is not None and all(isinstance(array, np.memmap) for array in parts.values())
    mapped = CompactG2P.from_parts(parts)
    assert mapped.lexicon.golds.d._blob.obj.base is parts["gold.blob"]  # a view of the mapping, no copy
    for sentence in corpus()[::7]:
        assert mapped(sentence) == theirs(sentence), sentence


def _no_json_tables(monkeypatch):
    """Make hibari's big JSON files unreadable to hibari_g2p: only a G2P read from the cache still loads."""
    real = hibari_g2p.load_asset

    def guarded(name: str):
        if name.endswith(".json.gz"):
            raise AssertionError(f"{name} parsed although the cache has its tables")
        return real(name)

    monkeypatch.setattr(hibari_g2p, "load_asset", guarded)


def test_a_later_start_reads_the_tables_from_the_cache(tmp_path, monkeypatch):
    first = CompactG2P.cached(tmp_path)
    _no_json_tables(monkeypatch)
    later = CompactG2P.cached(tmp_path)
    for sentence in TRICKY:
        assert later(sentence) == first(sentence)


def _cached_tables(directory: Path) -> Path:
    (path,) = directory.glob("hibari-g2p-*")
    return path


def test_a_truncated_table_is_built_again_and_replaced(both, cache, monkeypatch, caplog):
    npy = _cached_tables(cache) / "gold.blob.npy"
    npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])  # cut short, as by a full disk
    with caplog.at_level(logging.WARNING):
        rebuilt = CompactG2P.cached(cache)
    assert "cannot be read" in caplog.text and "building them again" in caplog.text
    assert rebuilt("I read the book.") == both[0]("I read the book.")
    assert [p.name for p in cache.iterdir()] == [_cached_tables(cache).name]  # nothing left beside it
    _no_json_tables(monkeypatch)
    assert CompactG2P.cached(cache)("I read the book.") == rebuilt("I read the book.")


def test_a_missing_or_mistyped_table_is_built_again(both, cache, monkeypatch, caplog):
    path = _cached_tables(cache)
    (path / "tagger.row_weights.npy").unlink()
    np.save(path / "silver.ends.npy", np.zeros(3, np.float32))
    with caplog.at_level(logging.WARNING):
        rebuilt = CompactG2P.cached(cache)
    assert "not usable" in caplog.text and "building them again" in caplog.text
    assert rebuilt("Hello, World!") == both[0]("Hello, World!")
    _no_json_tables(monkeypatch)
    assert CompactG2P.cached(cache)("Hello, World!") == rebuilt("Hello, World!")


def test_a_cache_of_pickled_objects_is_not_loaded(both, cache, caplog):
    np.save(_cached_tables(cache) / "gold.blob.npy", np.array([object()], dtype=object), allow_pickle=True)
    with caplog.at_level(logging.WARNING):
        g2p = CompactG2P.cached(cache)
    assert "cannot be read" in caplog.text
    assert g2p("Hello.") == both[0]("Hello.")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_an_unwritable_cache_only_costs_time(both, tmp_path, caplog):
    tmp_path.chmod(0o500)
    try:
        with caplog.at_level(logging.INFO):
            g2p = CompactG2P.cached(tmp_path / "engines")
    finally:
        tmp_path.chmod(0o700)
    assert "cannot cache hibari's tables" in caplog.text
    assert g2p("Hello.") == both[0]("Hello.")


def test_a_cache_directory_that_is_a_file_only_costs_time(both, tmp_path, caplog):
    blocker = tmp_path / "engines"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.INFO):
        g2p = CompactG2P.cached(blocker)
    assert "cannot cache hibari's tables" in caplog.text
    assert g2p("Hello.") == both[0]("Hello.")


def test_changed_assets_get_a_cache_file_of_their_own(tmp_path):
    from hibari.g2p import ASSETS

    assets = tmp_path / "assets"
    assets.mkdir()
    for name in hibari_tables.SOURCES:
        shutil.copy(os.path.join(ASSETS, name), assets / name)
    before = hibari_tables.cache_path(tmp_path, str(assets))
    assert hibari_tables.cache_path(tmp_path, str(assets)) == before
    tagger = assets / "tagger.json.gz"
    os.utime(tagger, ns=(tagger.stat().st_atime_ns, tagger.stat().st_mtime_ns + 1_000_000_000))
    assert hibari_tables.cache_path(tmp_path, str(assets)) != before


def test_the_hash_is_the_same_in_every_process():
    """Python's own str hash differs per process (PYTHONHASHSEED); a cached table needs one that does not."""
    import subprocess
    import sys

    code = "from voicegui.server.engines.hibari_g2p import key_hash; print(key_hash('yesterday'))"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(seen) == 1
