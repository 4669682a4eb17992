"""RecentRows keeps the most recent rows in order, hands out views that later appends never change, and does
not grow past twice what it keeps."""

from __future__ import annotations

import numpy as np
import pytest

from voicegui.stream.level_history import RecentRows


@pytest.mark.parametrize("n", [0, 1, 5, 9, 10, 11, 19, 20, 21, 57])
def test_keeps_the_last_rows_oldest_first(n):
    rows = RecentRows(10, columns=2)
    for i in range(n):
        rows.append(float(i), float(i) * 2)
    view = rows.view()
    want = np.arange(max(0, n - 10), n, dtype=np.float64)
    assert len(rows) == len(want) == len(view)
    assert np.array_equal(view[:, 0], want) and np.array_equal(view[:, 1], want * 2)


def test_a_view_is_read_only_and_never_changes_while_rows_come_and_go():
    rows = RecentRows(4, columns=2)
    views = []
    for i in range(1000):
        rows.append(float(i), -float(i))
        views.append((i, rows.view()))
    for i, view in views:  # each still shows the rows it showed when it was taken
        want = np.arange(max(0, i - 3), i + 1, dtype=np.float64)
        assert np.array_equal(view[:, 0], want) and np.array_equal(view[:, 1], -want)
    with pytest.raises(ValueError):
        views[-1][1][0, 0] = 1.0


def test_a_view_copies_nothing():
    rows = RecentRows(20000, columns=4)
    for i in range(5000):
        rows.append(float(i), 0.0, 0.0, 1.0)
    first, second = rows.view(), rows.view()
    assert np.shares_memory(first, second)
    rows.append(5000.0, 0.0, 0.0, 1.0)
    assert np.shares_memory(first, rows.view())  # appended past its end, in the same array


def test_samples_in_chunks_of_any_size_keep_the_last_ones():
    wave = RecentRows(100, dtype=np.float32)
    sent = np.arange(1234, dtype=np.float32)
    at = 0
    for size in (7, 0, 150, 1, 99, 300, 77, 500, 3, 97):
        wave.extend(sent[at:at + size])
        at += size
        view = wave.view()
        assert view.dtype == np.float32
        assert np.array_equal(view, sent[max(0, at - 100):at])


def test_a_short_table_holds_little_and_a_long_one_is_bounded():
    """The player keeps ~50 finished sessions: a short Speak's history must not cost the full 20,000 rows."""
    short = RecentRows(20000, columns=4)
    for i in range(100):
        short.append(float(i), 0.0, 0.0, 0.0)
    assert short._data.nbytes <= 256 * 4 * 8
    long = RecentRows(20000, columns=4)
    for i in range(100_000):
        long.append(float(i), 0.0, 0.0, 0.0)
    assert long._data.nbytes <= 2 * 20000 * 4 * 8
    assert long.view()[0, 0] == 80000.0 and len(long) == 20000


def test_shrink_keeps_the_rows_and_frees_the_room():
    rows = RecentRows(1000, columns=2)
    for i in range(300):
        rows.append(float(i), 0.0)
    rows.shrink()
    assert rows._data.nbytes == 300 * 2 * 8
    assert np.array_equal(rows.view()[:, 0], np.arange(300.0))
    empty = RecentRows(10)
    empty.shrink()
    empty.append(1.0)  # appending after a shrink to nothing still works
    assert empty.view().tolist() == [1.0]


def test_needs_a_positive_size():
    with pytest.raises(ValueError):
        RecentRows(0)
