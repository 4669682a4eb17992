"""hibari's G2P (text -> phonemes) with its tables packed into flat arrays: the same answers, a fraction of the
memory.

hibari-tts keeps its pronunciation lexicons (~183k words) and its part-of-speech tagger's weights (~80k
features x up to 50 tags) as the Python dicts its JSON files load into: ~100 MB resident of the ~150 MB the
loaded voice held (measured, hibari-tts 0.2.1), against an 8 MB voice model. Here the keys are one UTF-8 blob,
each found through a sorted array of the keys' 32-bit hashes; the lexicon readings are one more blob, the tagger's
weights one array per column (float64, so each score is the same sum, in the same order, as hibari's). Every
table is a numpy array of plain numbers (`Parts`), looked up in place through memoryviews, never copied into
Python objects: ~12 MB of arrays. Memory-mapped from the cache, they are clean file pages the kernel can drop
and read again, and only those lookups touched (with the kernel's fault-around neighbours) are resident: ~7 MB
after the warm-up sentence, most of the 12 after a few sentences (measured). Reading a sentence takes as long
as with hibari's dicts (measured on the README and docs/architecture.md, ~900 sentences).
`tests/server/test_hibari_g2p.py` checks that the phonemes and tags are hibari's own.

Parsing hibari's JSON and packing it is most of loading the voice (~1 s of CPU, on the GIL, while the window
starts), so the packed tables are also written to the user's cache (`CompactG2P.cached`, files in
hibari_tables.py) and memory-mapped from there on later starts (and right after the first start writes them).
That is why the keys' hash is `key_hash` (CRC-32 of the UTF-8 text), not Python's `hash()`, which differs from
one process to the next.

`CompactG2P` is hibari's `hibari.g2p.G2P` built from these tables (American English only: the one bundled
voice, "heart", is American); everything after the tables is hibari's code.

Threads: the tables are immutable after construction; the G2P belongs to the hibari engine's worker thread
(see hibari.py), like hibari's own."""

from __future__ import annotations

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
    return zlib.crc32(_utf8(key))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def hash_order(keys: list[str]) -> tuple[np.ndarray, list[int]]:
    """(hashes, order): each key's `key_hash`, and the keys' indices sorted by it (row r of a KeyTable is
    keys[order[r]])."""
    hashes = np.fromiter(map(key_hash, keys), np.uint32, len(keys))
    return hashes, np.argsort(hashes, kind="stable").tolist()


def _pack(items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(blob, ends): the strings' UTF-8 joined, and where each ends in the blob, in bytes (item i is
    blob[ends[i-1]:ends[i]], from 0 for the first). Bytes, not characters: a lookup compares and decodes its
    slice of a memory-mapped blob without touching the rest of it."""
    encoded = list(map(_utf8, items))
    blob = np.frombuffer(b"".join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)
    return blob, np.fromiter(itertools.accumulate(map(len, encoded)), np.int32, len(encoded))


def _array(parts: Parts, name: str, dtype: type[np.generic], length: int | None = None) -> np.ndarray:
    """parts[name] as a plain ndarray sharing its memory (a mapped file's pages are read when touched);
    ValueError if it is not a flat array of `dtype` (of `length` items, if given), as in a damaged cache."""
    array = np.asarray(parts[name])
    if array.dtype != np.dtype(dtype) or array.ndim != 1 or (length is not None and len(array) != length):
        raise ValueError(f"table {name} is {array.dtype} {array.shape}, expected {np.dtype(dtype)} "
                         f"({'any length' if length is None else length})")
    return array


def _view(parts: Parts, name: str, dtype: type[np.generic], length: int | None = None) -> memoryview:
    """`_array` as a memoryview: bisect and indexing on it are C calls that give plain ints (no numpy scalar
    is made per lookup)."""
    return _array(parts, name, dtype, length).data


class KeyTable:
    """A fixed set of strings, each with a row number 0..n-1, in the order `hash_order` gives. `row` finds a
    key's row by one binary search over the hashes; `in` answers like a set's."""

    def __init__(self, parts: Parts, prefix: str) -> None:
        self._hashes = _view(parts, f"{prefix}.hashes", np.uint32)
        self._blob = _view(parts, f"{prefix}.blob", np.uint8)
        self._ends = _view(parts, f"{prefix}.ends", np.int32, len(self._hashes))

    @staticmethod
    def pack(keys: list[str], prefix: str) -> tuple[Parts, list[int]]:
        """(the parts of a KeyTable of `keys`, the order of its rows: row r is keys[order[r]])."""
        hashes, order = hash_order(keys)
        blob, ends = _pack(list(map(keys.__getitem__, order)))
        return {f"{prefix}.hashes": hashes[order], f"{prefix}.blob": blob, f"{prefix}.ends": ends}, order

    def __len__(self) -> int:
        return len(self._hashes)

    def row(self, key: str) -> int:
        """The row of `key`, or -1 if it is not in the table."""
        data = _utf8(key)
        h = zlib.crc32(data)  # key_hash, with the UTF-8 kept for the comparison
        hashes = self._hashes
        row = bisect.bisect_left(hashes, h)
        while row < len(hashes) and hashes[row] == h:
            if self._blob[self._ends[row - 1] if row else 0:self._ends[row]] == data:
                return row
            row += 1  # another key with the same hash
        return -1

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.row(key) >= 0


class CompactLexicon:
    """A read-only `dict.get` over one of hibari's lexicons (word -> reading, or -> {tag: reading})."""

    def __init__(self, parts: Parts, prefix: str) -> None:
        self._keys = KeyTable(parts, f"{prefix}.keys")
        self._by_tag = _view(parts, f"{prefix}.by_tag", np.int32)  # sorted rows
        self._blob = _view(parts, f"{prefix}.blob", np.uint8)
        self._ends = _view(parts, f"{prefix}.ends", np.int32, len(self._keys))

    @staticmethod
    def pack(words: Mapping[str, Any], prefix: str) -> Parts:
        """The parts of a CompactLexicon of `words`."""
        keys, order = KeyTable.pack(list(words), f"{prefix}.keys")
        values = list(words.values())
        readings = list(map(values.__getitem__, order))
        # The ~800 words read by part of speech keep their {tag: reading} as JSON text, decoded per lookup.
        by_tag = [row for row, value in enumerate(readings) if not isinstance(value, str)]
        for row in by_tag:
            readings[row] = json.dumps(readings[row])
        blob, ends = _pack(readings)
        return {**keys, f"{prefix}.by_tag": np.array(by_tag, np.int32), f"{prefix}.blob": blob,
                f"{prefix}.ends": ends}

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, word: str, default: Any = None) -> Any:
        row = self._keys.row(word)
        if row < 0:
            return default
        text = str(self._blob[self._ends[row - 1] if row else 0:self._ends[row]], "utf-8", "surrogatepass")
        i = bisect.bisect_left(self._by_tag, row)
        if i < len(self._by_tag) and self._by_tag[i] == row:
            return json.loads(text)
        return text


class CompactTagDict:
    """A read-only `dict.get` over the tagger's word -> tag table."""

    def __init__(self, parts: Parts, prefix: str, tags: list[str]) -> None:
        self._keys = KeyTable(parts, f"{prefix}.keys")
        self._tags = tags
        self._tag_of = _view(parts, f"{prefix}.tag_of", np.int16, len(self._keys))

    @staticmethod
    def pack(tags: list[str], tagdict: Mapping[str, str], prefix: str) -> Parts:
        """The parts of a CompactTagDict of `tagdict`, its tags numbered as in `tags`."""
        words = list(tagdict)
        keys, order = KeyTable.pack(words, f"{prefix}.keys")
        index = {tag: i for i, tag in enumerate(tags)}
        tag_of = np.fromiter(map(index.__getitem__, map(tagdict.__getitem__, map(words.__getitem__, order))),
                             np.int16, len(words))
        return {**keys, f"{prefix}.tag_of": tag_of}

    def get(self, word: str, default: str | None = None) -> str | None:
        row = self._keys.row(word)
        return default if row < 0 else self._tags[self._tag_of[row]]


class CompactTagger(Tagger):
    """hibari's averaged-perceptron tagger with its tables in arrays (one row of (tag, weight) per feature)."""

    def __init__(self, parts: Parts, prefix: str) -> None:
        # Not Tagger.__init__: it keeps the parsed dicts. These are the attributes it sets.
        self.tags = [str(tag) for tag in json.loads(str(_view(parts, f"{prefix}.tags", np.uint8), "utf-8"))]
        self.tagdict = CompactTagDict(parts, f"{prefix}.tagdict", self.tags)
        has_vocab = f"{prefix}.vocab.hashes" in parts
        self.vocab = KeyTable(parts, f"{prefix}.vocab") if has_vocab else None
        self.weights = None
        self._features = KeyTable(parts, f"{prefix}.features")
        self._row_ends = _view(parts, f"{prefix}.row_ends", np.int32, len(self._features))
        total = self._row_ends[-1] if len(self._row_ends) else 0
        self._row_tags = _array(parts, f"{prefix}.row_tags", np.int16, total)
        self._row_weights = _array(parts, f"{prefix}.row_weights", np.float64, total)

    @staticmethod
    def pack(model: dict[str, Any], prefix: str) -> Parts:
        """The parts of a CompactTagger of hibari's parsed tagger.json.gz; float64 weights, so each score is
        the same sum, in the same order, as hibari's."""
        tags = [str(tag) for tag in model["tags"]]
        parts = {f"{prefix}.tags": np.frombuffer(_utf8(json.dumps(tags)), np.uint8),
                 **CompactTagDict.pack(tags, model["tagdict"], f"{prefix}.tagdict")}
        if "vocab" in model:
            parts.update(KeyTable.pack(model["vocab"], f"{prefix}.vocab")[0])
        weights: dict[str, dict[str, float]] = model["weights"]
        tag_index = {tag: i for i, tag in enumerate(tags)}
        features = list(weights)
        keys, order = KeyTable.pack(features, f"{prefix}.features")
        rows = list(map(weights.__getitem__, map(features.__getitem__, order)))
        row_ends = np.fromiter(itertools.accumulate(map(len, rows)), np.int32, len(rows))
        total = int(row_ends[-1]) if len(rows) else 0
        chain = itertools.chain.from_iterable
        return {**parts, **keys, f"{prefix}.row_ends": row_ends,
                f"{prefix}.row_tags": np.fromiter(map(tag_index.__getitem__, chain(rows)), np.int16, total),
                f"{prefix}.row_weights": np.fromiter(chain(map(dict.values, rows)), np.float64, total)}

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
    OOV net; False skips them), as in `hibari.g2p.G2P`. Built from hibari's files (`CompactG2P(oov)`), from
    parts (`from_parts`: arrays, memory-mapped ones too), or from the user's cache (`cached`)."""

    def __init__(self, oov: Callable[[str], str | None] | bool | None = None) -> None:
        # Not G2P.__init__: it would keep the tables as dicts. `_attach` sets the attributes it sets.
        self._attach(build_parts(), oov)

    def _attach(self, parts: Parts, oov: Callable[[str], str | None] | bool | None) -> None:
        self._parts = parts
        self.tokenizer = Tokenizer(load_asset("tokenizer_exceptions.json"))
        self.lexicon = Lexicon(CompactLexicon(parts, "gold"), CompactLexicon(parts, "silver"), False)
        self.tagger = CompactTagger(parts, "tagger")
        self._oov = oov
        self.unk = ""
        self.british = False

    def parts(self) -> Parts:
        """The packed tables as arrays (what `from_parts` takes back); the tokenizer is hibari's, read anew."""
        return dict(self._parts)

    @classmethod
    def from_parts(cls, parts: Parts, oov: Callable[[str], str | None] | bool | None = None) -> CompactG2P:
        """The G2P over `parts` (not copied); KeyError or ValueError if a table is missing or malformed."""
        g2p = cls.__new__(cls)
        g2p._attach(parts, oov)
        return g2p

    @classmethod
    def cached(cls, directory: Path | None,
               oov: Callable[[str], str | None] | bool | None = None) -> CompactG2P:
        """The G2P over the tables cached in `directory` (None: no cache), memory-mapped, else built from
        hibari's files and written there for the next start. A cache that cannot be read is built again
        (logged); one that cannot be written only costs the next start the same time as this one (logged)."""
        path = None if directory is None else hibari_tables.cache_path(directory, ASSETS)
        if path is not None:
            parts = hibari_tables.read(path)
            if parts is not None:
                try:
                    return cls.from_parts(parts, oov)
                except (KeyError, ValueError, UnicodeDecodeError) as exc:
                    log.warning("the cached hibari tables %s are not usable (%s): building them again", path, exc)
        parts = build_parts()
        if path is not None and hibari_tables.write(path, parts):
            # The mapped copy rather than the arrays just built: this start then holds what later ones hold.
            parts = hibari_tables.read(path) or parts
        return cls.from_parts(parts, oov)


def build_parts() -> Parts:
    """The packed tables from hibari's JSON files; each file is parsed, packed and dropped before the next, so
    the parsed dicts never all exist at once."""
    return {**CompactLexicon.pack(load_asset("lexicon_us_gold.json.gz"), "gold"),
            **CompactLexicon.pack(load_asset("lexicon_us_silver.json.gz"), "silver"),
            **CompactTagger.pack(load_asset("tagger.json.gz"), "tagger")}
