"""RecentRows: the most recent rows of an append-only table (a Speak's buffer-level points, its played samples),
handed out as read-only views that never change, so a snapshot copies nothing.

Rows are written past the last one only: a row, once written, is never written again in the same array. When
the array is full, the kept rows are copied into a new one (growing from 256 rows, as a short Speak and the ~50
sessions the player keeps hold little, up to twice the kept length; after that a new array of that size at each
``keep`` rows: amortised O(1) per row). A view taken earlier keeps its old array alive and unchanged.
Copying the kept points on every read cost several ms per snapshot near the 20,000-point cap, and the window
reads ~34 snapshots a second; before that a deque of tuples turned into an array on every read cost more.

Threads: not thread-safe by itself; the session guards it with its lock (the loop appends, any thread takes a
view, and the view may then be read without the lock).
"""

from __future__ import annotations

import numpy as np

_FIRST_ROWS = 256


class RecentRows:
    """The last `keep` rows, each of `columns` values (None: one value per row, a 1-D table)."""

    def __init__(self, keep: int, columns: int | None = None, dtype: type = np.float64) -> None:
        if keep <= 0:
            raise ValueError("keep must be positive")
        self._keep = keep
        self._row = () if columns is None else (columns,)
        self._data = np.zeros((min(2 * keep, _FIRST_ROWS), *self._row), dtype=dtype)
        self._end = 0

    def _room(self, rows: int) -> None:
        """Make room for `rows` more rows past the end, in a new array if this one has none."""
        if self._end + rows <= len(self._data):
            return
        kept = min(self._end, self._keep)
        size = max(len(self._data), 1)
        while size < 2 * self._keep and size < kept + rows:
            size *= 2
        size = max(min(size, 2 * self._keep), kept + rows)
        fresh = np.zeros((size, *self._row), dtype=self._data.dtype)
        fresh[:kept] = self._data[self._end - kept:self._end]
        self._data, self._end = fresh, kept

    def append(self, *values: float) -> None:
        """One row (one value per column)."""
        self._room(1)
        self._data[self._end] = values if self._row else values[0]
        self._end += 1

    def extend(self, rows: np.ndarray) -> None:
        """Several rows at once, oldest first (only the last `keep` of them can be kept)."""
        rows = rows[-self._keep:]
        self._room(len(rows))
        self._data[self._end:self._end + len(rows)] = rows
        self._end += len(rows)

    def shrink(self) -> None:
        """Keep the kept rows only, in an array of their size (a finished session appends no more)."""
        kept = self._data[max(0, self._end - self._keep):self._end].copy()
        self._data, self._end = kept, len(kept)

    def __len__(self) -> int:
        return min(self._end, self._keep)

    def view(self) -> np.ndarray:
        """The kept rows, oldest first: a read-only view that later appends never change."""
        kept = self._data[max(0, self._end - self._keep):self._end]
        kept.flags.writeable = False
        return kept
