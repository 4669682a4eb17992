"""hibari's G2P (text -> phonemes) with its tables packed into numpy arrays: the same answers, ~1/6 the memory.

hibari-tts keeps its pronunciation lexicons (~183k words) and its part-of-speech tagger's weights (~80k
features x up to 50 tags) as the Python dicts its JSON files load into: ~100 MB resident of the ~150 MB the
loaded voice held (measured, hibari-tts 0.2.1), against an 8 MB voice model. Here every key is kept as UTF-8
bytes in one blob, found through a sorted array of its 64-bit `hash()`; lexicon readings are one more blob,
the tagger's weights one array per column (float64, so each score is the same sum, in the same order, as
hibari's). A lookup costs a few microseconds instead of a dict's fraction of one: ~1-3 ms more per sentence,
against ~10-40 ms of synthesis. `tests/server/test_hibari_g2p.py` checks that the phonemes are hibari's own.

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
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from hibari.g2p import ASSETS, G2P
from hibari.g2p.lexicon import Lexicon
from hibari.g2p.tagger import Tagger
from hibari.g2p.tokenize import Tokenizer


def load_asset(name: str) -> Any:
    """One of hibari's JSON assets (gzip-compressed if its name ends in .gz)."""
    path = os.path.join(ASSETS, name)
    opener: Callable[..., Any] = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def hash_order(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, order): each key's `hash()`, and the keys' indices sorted by it (row r of a KeyTable is
    keys[order[r]])."""
    hashes = np.fromiter((hash(k) for k in keys), np.int64, len(keys))
    return hashes, np.argsort(hashes, kind="stable")


class KeyTable:
    """A fixed set of strings, each with a row number 0..n-1, in the order `hash_order` gives. `row` finds a
    key's row by one binary search over the hashes; `in` answers like a set's."""

    def __init__(self, keys: list[str], hashes: np.ndarray, order: np.ndarray) -> None:
        # array.array, not numpy: bisect and indexing on it are C calls, no numpy scalar is made per lookup.
        self._hashes = array.array("q", hashes[order].tobytes())
        encoded = [keys[i].encode("utf-8") for i in order]
        self._blob = b"".join(encoded)
        self._ends = _ends(len(e) for e in encoded)

    def __len__(self) -> int:
        return len(self._hashes)

    def row(self, key: str) -> int:
        """The row of `key`, or -1 if it is not in the table."""
        h = hash(key)
        hashes = self._hashes
        row = bisect.bisect_left(hashes, h)
        encoded = None
        while row < len(hashes) and hashes[row] == h:
            if encoded is None:
                encoded = key.encode("utf-8")
            if self._blob[self._ends[row - 1] if row else 0:self._ends[row]] == encoded:
                return row
            row += 1  # another key with the same hash
        return -1

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.row(key) >= 0


def _ends(lengths: Iterable[int]) -> array.array[int]:
    """Running totals of `lengths`: item i's bytes end at ends[i] and start at ends[i - 1] (0 for the first)."""
    return array.array("i", itertools.accumulate(lengths))  # the blobs are a few MB


class CompactLexicon:
    """A read-only `dict.get` over one of hibari's lexicons (word -> reading, or -> {tag: reading})."""

    def __init__(self, words: Mapping[str, Any]) -> None:
        keys = list(words)
        hashes, order = hash_order(keys)
        self._keys = KeyTable(keys, hashes, order)
        readings: list[bytes] = []
        # The ~800 words read by part of speech keep their {tag: reading} as JSON text, decoded per lookup:
        # no object from the parsed file outlives it (each would pin a block of the allocator's memory).
        by_tag: list[int] = []
        for row, index in enumerate(order):
            value = words[keys[index]]
            if isinstance(value, str):
                readings.append(value.encode("utf-8"))
            else:
                by_tag.append(row)
                readings.append(json.dumps(value).encode("utf-8"))
        self._by_tag = array.array("i", by_tag)  # sorted: rows are visited in order
        self._blob = b"".join(readings)
        self._ends = _ends(len(r) for r in readings)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, word: str, default: Any = None) -> Any:
        row = self._keys.row(word)
        if row < 0:
            return default
        text = self._blob[self._ends[row - 1] if row else 0:self._ends[row]].decode("utf-8")
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
        self._tag_of = array.array("h", (index[tagdict[words[i]]] for i in order))

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
        rows = [weights[features[i]] for i in order]
        self._row_ends = _ends(len(r) for r in rows)
        total = self._row_ends[-1]
        self._row_tags = np.fromiter((tag_index[t] for r in rows for t in r), np.int16, total)
        self._row_weights = np.fromiter((w for r in rows for w in r.values()), np.float64, total)

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
        self._oov = oov
        self.unk = ""
        self.british = False
