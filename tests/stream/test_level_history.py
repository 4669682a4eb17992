"""LevelHistory keeps the most recent points in order, like the deque it replaced, without growing."""

from __future__ import annotations

import numpy as np
import pytest

from voicegui.stream.level_history import LevelHistory


@pytest.mark.parametrize("n", [0, 1, 5, 9, 10, 11, 19, 20, 21, 57])
def test_keeps_the_last_points_oldest_first(n):
    hist = LevelHistory(10)
    for i in range(n):
        hist.append(float(i), float(i) * 2)
    t, ms = hist.arrays()
    want = np.arange(max(0, n - 10), n, dtype=np.float64)
    assert len(hist) == len(want)
    assert np.array_equal(t, want) and np.array_equal(ms, want * 2)


def test_arrays_are_copies_and_memory_does_not_grow():
    hist = LevelHistory(4)
    buffer = hist._data
    for i in range(1000):
        hist.append(float(i), 0.0)
    t, _ = hist.arrays()
    t[:] = -1
    assert hist.arrays()[0].tolist() == [996.0, 997.0, 998.0, 999.0]
    assert hist._data is buffer


def test_a_short_history_holds_little_and_a_long_one_is_bounded():
    """The player keeps ~50 finished sessions: a short Speak's history must not cost the full 20,000 rows."""
    short = LevelHistory(20000)
    for i in range(100):
        short.append(float(i), 0.0)
    assert short._data.nbytes <= 256 * 2 * 8
    long = LevelHistory(20000)
    for i in range(100_000):
        long.append(float(i), 0.0)
    assert long._data.nbytes == 2 * 20000 * 2 * 8
    assert long.arrays()[0][0] == 80000.0 and len(long) == 20000


def test_needs_a_positive_size():
    with pytest.raises(ValueError):
        LevelHistory(0)
