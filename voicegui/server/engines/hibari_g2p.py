"""hibari's G2P (text -> phonemes) with its tables packed into strings and arrays: the same answers, ~1/5 the
memory.

hibari-tts keeps its pronunciation lexicons (~183k words) and its part-of-speech tagger's weights (~80k
features x up to 50 tags) as the Python dicts its JSON files load into: ~100 MB resident of the ~150 MB the
loaded voice held (measured, hibari-tts 0.2.1), against an 8 MB voice model. Here the keys are one string,
each found through a sorted array of the keys' 64-bit `hash()`; the lexicon readings are one more string, the
tagger's weights one array per column (float64, so each score is the same sum, in the same order, as
hibari's). Reading a sentence takes as long as with hibari's dicts (measured on the README and
docs/architecture.md, ~900 sentences). `tests/server/test_hibari_g2p.py` checks that the phonemes and tags are
hibari's own.

Parsing hibari's JSON and packing it is most of loading the voice (~1 s of CPU, on the GIL, while the window
starts), so the packed tables are also written to the user's cache (`CompactG2P.cached`, files in
hibari_tables.py) and read back from there on later starts (a few arrays). That is why the keys' hash is
`key_hash` (CRC-32 of the UTF-8 text), not Python's `hash()`, which differs from one process to the next.

`CompactG2P` is hibari's `hibari.g2p.G2P` built from these tables (American English only: the one bundled
voice, "heart", is American); everything after the tables is hibari's code.

Threads: the tables are immutable after construction; the G2P belongs to the hibari engine's worker thread
(see hibari.py), like hibari's own.
"""

from __future__ import annotations

import array
import bisect
import gzip
import itertools
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from hibari.g2p import ASSETS, G2P
from hibari.g2p.lexicon import Lexicon
from hibari.g2p.tagger import Tagger
from hibari.g2p.tokenize import Tokenizer

from voicegui.server.engines import hibari_tables
from voicegui.server.engines.hibari_tables import Parts

log = logging.getLogger(__name__)


def load_asset(name: str) -> Any:
    """One of hibari's JSON assets (gzip-compressed if its name ends in .gz)."""
    path = os.path.join(ASSETS, name)
    opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def key_hash(key: str) -> int:
    """A key's hash, the same in every process (so the tables can be cached): CRC-32 of its UTF-8 text. Keys
    that share one are told apart by comparing the text (`KeyTable.row`)."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass"))


def hash_order(keys: list[str]) -> tuple[np.ndarray, list[int]]:
    """(hashes, order): each key's `key_hash`, and the keys' indices sorted by it (row r of a KeyTable is
    keys[order[r]])."""
    hashes = np.fromiter(map(key_hash, keys), np.int64, len(keys))
    return hashes, np.argsort(hashes, kind="stable").tolist()


def _text_part(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)


def _text_of(part: np.ndarray) -> str:
    return part.tobytes().decode("utf-8", "surrogatepass")


def _array_part(values: array.array[int], dtype: type[np.generic]) -> np.ndarray:
    return np.frombuffer(values, dtype) if len(values) else np.zeros(0, dtype)


def _array_of(part: np.ndarray, code: str) -> array.array[int]:
    return array.array(code, part.tobytes())


def _pack(items: list[str]) -> tuple[str, array.array[int]]:
    """(blob, ends): the strings joined, and where each ends in the blob (item i is blob[ends[i-1]:ends[i]],
    from 0 for the first). A str blob, not UTF-8: a lookup then slices and compares without decoding; the
    IPA readings make it two bytes a character, which is what UTF-8 takes for them too."""
    return "".join(items), array.array("i", itertools.accumulate(map(len, items)))


class KeyTable:
    """A fixed set of strings, each with a row number 0..n-1, in the order `hash_order` gives. `row` finds a
    key's row by one binary search over the hashes; `in` answers like a set's."""

    def __init__(self, keys: list[str], hashes: np.ndarray, order: list[int]) -> None:
        # array.array, not numpy: bisect and indexing on it are C calls, no numpy scalar is made per lookup.
        self._hashes = array.array("q", hashes[order].tobytes())
        self._blob, self._ends = _pack(list(map(keys.__getitem__, order)))

    def parts(self, prefix: str) -> Parts:
        return {f"{prefix}.hashes": _array_part(self._hashes, np.int64), f"{prefix}.blob": _text_part(self._blob),
                f"{prefix}.ends": _array_part(self._ends, np.int32)}

    @classmethod
    def from_parts(cls, parts: Parts, prefix: str) -> KeyTable:
        table = cls.__new__(cls)
        table._hashes = _array_of(parts[f"{prefix}.hashes"], "q")
        table._blob = _text_of(parts[f"{prefix}.blob"])
        table._ends = _array_of(parts[f"{prefix}.ends"], "i")
        return table

    def __len__(self) -> int:
        return len(self._hashes)

    def row(self, key: str) -> int:
        """The row of `key`, or -1 if it is not in the table."""
        h = key_hash(key)
        hashes = self._hashes
        row = bisect.bisect_left(hashes, h)
        while row < len(hashes) and hashes[row] == h:
            if self._blob[self._ends[row - 1] if row else 0:self._ends[row]] == key:
                return row
            row += 1  # another key with the same hash
        return -1

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.row(key) >= 0


class CompactLexicon:
    """A read-only `dict.get` over one of hibari's lexicons (word -> reading, or -> {tag: reading})."""

    def __init__(self, words: Mapping[str, Any]) -> None:
        keys = list(words)
        hashes, order = hash_order(keys)
        self._keys = KeyTable(keys, hashes, order)
        values = list(words.values())
        readings = list(map(values.__getitem__, order))
        # The ~800 words read by part of speech keep their {tag: reading} as JSON text, decoded per lookup:
        # no object from the parsed file outlives it (each would pin a block of the allocator's memory).
        by_tag = [row for row, value in enumerate(readings) if not isinstance(value, str)]
        for row in by_tag:
            readings[row] = json.dumps(readings[row])
        self._by_tag = array.array("i", by_tag)  # sorted
        self._blob, self._ends = _pack(readings)

    def parts(self, prefix: str) -> Parts:
        return {**self._keys.parts(f"{prefix}.keys"), f"{prefix}.by_tag": _array_part(self._by_tag, np.int32),
                f"{prefix}.blob": _text_part(self._blob), f"{prefix}.ends": _array_part(self._ends, np.int32)}

    @classmethod
    def from_parts(cls, parts: Parts, prefix: str) -> CompactLexicon:
        lexicon = cls.__new__(cls)
        lexicon._keys = KeyTable.from_parts(parts, f"{prefix}.keys")
        lexicon._by_tag = _array_of(parts[f"{prefix}.by_tag"], "i")
        lexicon._blob = _text_of(parts[f"{prefix}.blob"])
        lexicon._ends = _array_of(parts[f"{prefix}.ends"], "i")
        return lexicon

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, word: str, default: Any = None) -> Any:
        row = self._keys.row(word)
        if row < 0:
            return default
        text = self._blob[self._ends[row - 1] if row else 0:self._ends[row]]
        i = bisect.bisect_left(self._by_tag, row)
        if i < len(self._by_tag) and self._by_tag[i] == row:
            return json.loads(text)
        return text


class CompactTagDict:
    """A read-only `dict.get` over the tagger's word -> tag table."""

    def __init__(self, tags: list[str], tagdict: Mapping[str, str]) -> None:
        words = list(tagdict)
        hashes, order = hash_order(words)
        self._keys = KeyTable(words, hashes, order)
        index = {tag: i for i, tag in enumerate(tags)}
        self._tags = tags
        self._tag_of = array.array("h", map(index.__getitem__, map(tagdict.__getitem__, map(words.__getitem__, order))))

    def parts(self, prefix: str) -> Parts:
        return {**self._keys.parts(f"{prefix}.keys"), f"{prefix}.tag_of": _array_part(self._tag_of, np.int16)}

    @classmethod
    def from_parts(cls, parts: Parts, prefix: str, tags: list[str]) -> CompactTagDict:
        tagdict = cls.__new__(cls)
        tagdict._keys = KeyTable.from_parts(parts, f"{prefix}.keys")
        tagdict._tags = tags
        tagdict._tag_of = _array_of(parts[f"{prefix}.tag_of"], "h")
        return tagdict

    def get(self, word: str, default: str | None = None) -> str | None:
        row = self._keys.row(word)
        return default if row < 0 else self._tags[self._tag_of[row]]


class CompactTagger(Tagger):
    """hibari's averaged-perceptron tagger with its tables in arrays (one row of (tag, weight) per feature)."""

    def __init__(self, model: dict[str, Any]) -> None:
        # Not Tagger.__init__: it keeps the parsed dicts. These are the attributes it sets.
        # The 50 tag names are copied so that nothing of the parsed file outlives it.
        self.tags = [str(tag) + "" for tag in model["tags"]]
        self.tagdict = CompactTagDict(self.tags, model["tagdict"])
        self.vocab = KeyTable(model["vocab"], *hash_order(model["vocab"])) if "vocab" in model else None
        weights: dict[str, dict[str, float]] = model["weights"]
        self.weights = None
        tag_index = {tag: i for i, tag in enumerate(self.tags)}
        features = list(weights)
        hashes, order = hash_order(features)
        self._features = KeyTable(features, hashes, order)
        rows = list(map(weights.__getitem__, map(features.__getitem__, order)))
        self._row_ends = array.array("i", itertools.accumulate(map(len, rows)))
        total = self._row_ends[-1]
        chain = itertools.chain.from_iterable
        self._row_tags = np.fromiter(map(tag_index.__getitem__, chain(rows)), np.int16, total)
        self._row_weights = np.fromiter(chain(map(dict.values, rows)), np.float64, total)

    def parts(self, prefix: str) -> Parts:
        parts = {f"{prefix}.tags": _text_part(json.dumps(self.tags)), **self.tagdict.parts(f"{prefix}.tagdict"),
                 **self._features.parts(f"{prefix}.features"),
                 f"{prefix}.row_ends": _array_part(self._row_ends, np.int32),
                 f"{prefix}.row_tags": self._row_tags, f"{prefix}.row_weights": self._row_weights}
        if self.vocab is not None:
            parts.update(self.vocab.parts(f"{prefix}.vocab"))
        return parts

    @classmethod
    def from_parts(cls, parts: Parts, prefix: str) -> CompactTagger:
        tagger = cls.__new__(cls)
        tagger.tags = [str(tag) for tag in json.loads(_text_of(parts[f"{prefix}.tags"]))]
        tagger.tagdict = CompactTagDict.from_parts(parts, f"{prefix}.tagdict", tagger.tags)
        has_vocab = f"{prefix}.vocab.hashes" in parts
        tagger.vocab = KeyTable.from_parts(parts, f"{prefix}.vocab") if has_vocab else None
        tagger.weights = None
        tagger._features = KeyTable.from_parts(parts, f"{prefix}.features")
        tagger._row_ends = _array_of(parts[f"{prefix}.row_ends"], "i")
        tagger._row_tags = np.asarray(parts[f"{prefix}.row_tags"], np.int16)
        tagger._row_weights = np.asarray(parts[f"{prefix}.row_weights"], np.float64)
        return tagger

    def predict(self, feats: Iterable[str]) -> str:
        """hibari's Tagger.predict: each tag's weights summed over the features in their order (the same
        float64 additions, so ties break alike), the best tag, ties to the greater name; "NN" if no feature
        is known."""
        scores = np.zeros(len(self.tags), np.float64)
        known = False
        for feat in feats:
            row = self._features.row(feat)
            if row < 0:
                continue
            start = self._row_ends[row - 1] if row else 0
            end = self._row_ends[row]
            if end > start:
                known = True
                # A feature names each tag at most once, so this adds each weight exactly once.
                scores[self._row_tags[start:end]] += self._row_weights[start:end]
        if not known:
            return "NN"
        values = scores.tolist()
        best = max(range(len(self.tags)), key=lambda i: (values[i], self.tags[i]))
        return self.tags[best]


class CompactG2P(G2P):
    """hibari's American-English G2P over the compact tables. `oov` reads words no lexicon knows (hibari's
    OOV net; False skips them), as in `hibari.g2p.G2P`."""

    def __init__(self, oov: Callable[[str], str | None] | bool | None = None) -> None:
        # Not G2P.__init__: it would keep the tables as dicts. These are the attributes it sets. Each file is
        # parsed, packed and dropped before the next, so the parsed dicts never all exist at once.
        self.tokenizer = Tokenizer(load_asset("tokenizer_exceptions.json"))
        self.lexicon = Lexicon(CompactLexicon(load_asset("lexicon_us_gold.json.gz")),
                               CompactLexicon(load_asset("lexicon_us_silver.json.gz")), False)
        self.tagger = CompactTagger(load_asset("tagger.json.gz"))
        self._init_rest(oov)

    def _init_rest(self, oov: Callable[[str], str | None] | bool | None) -> None:
        self._oov = oov
        self.unk = ""
        self.british = False

    def parts(self) -> Parts:
        """The packed tables as arrays (what `from_parts` takes back); the tokenizer is hibari's, read anew."""
        gold, silver = self.lexicon.golds.d, self.lexicon.silvers.d  # hibari's Dict wraps each lexicon as .d
        return {**gold.parts("gold"), **silver.parts("silver"), **self.tagger.parts("tagger")}

    @classmethod
    def from_parts(cls, parts: Parts, oov: Callable[[str], str | None] | bool | None = None) -> CompactG2P:
        g2p = cls.__new__(cls)
        g2p.tokenizer = Tokenizer(load_asset("tokenizer_exceptions.json"))
        g2p.lexicon = Lexicon(CompactLexicon.from_parts(parts, "gold"), CompactLexicon.from_parts(parts, "silver"),
                              False)
        g2p.tagger = CompactTagger.from_parts(parts, "tagger")
        g2p._init_rest(oov)
        return g2p

    @classmethod
    def cached(cls, directory: Path | None,
               oov: Callable[[str], str | None] | bool | None = None) -> CompactG2P:
        """The G2P from the tables cached in `directory` (None: no cache), else built from hibari's files and
        written there for the next start. A cache that cannot be read is built again (logged); one that cannot
        be written only costs the next start the same time as this one (logged)."""
        path = None if directory is None else hibari_tables.cache_path(directory, ASSETS)
        if path is not None:
            parts = hibari_tables.read(path)
            if parts is not None:
                try:
                    return cls.from_parts(parts, oov)
                except (KeyError, ValueError, UnicodeDecodeError) as exc:
                    log.warning("the cached hibari tables %s are not usable (%s): building them again", path, exc)
        g2p = cls(oov)
        if path is not None:
            hibari_tables.write(path, g2p.parts())
        return g2p
