"""LevelHistory: the most recent (time, buffered ms) points of a Speak, for the buffer plot.

`append()` writes into a numpy array that doubles as it fills (from 256 rows: a short Speak, and the ~50 the
player keeps, hold little) up to twice the kept length; when that is full it moves the kept half to the front
(amortised O(1), no allocation per point); `arrays()` copies the kept points in one slice.
A deque of tuples turned into an array on every read cost several ms per snapshot near its 20,000-point cap,
and the window reads ~34 snapshots a second.

Threads: not thread-safe by itself; the session guards it with its lock (the loop appends, the GUI thread reads).
"""

from __future__ import annotations

import numpy as np

_FIRST_ROWS = 256


class LevelHistory:
    def __init__(self, points: int) -> None:
        if points <= 0:
            raise ValueError("points must be positive")
        self._keep = points
        self._data = np.zeros((min(2 * points, _FIRST_ROWS), 2), dtype=np.float64)
        self._end = 0

    def append(self, t: float, buffered_ms: float) -> None:
        if self._end == len(self._data):
            if len(self._data) < 2 * self._keep:
                grown = np.zeros((min(2 * len(self._data), 2 * self._keep), 2), dtype=np.float64)
                grown[:self._end] = self._data
                self._data = grown
            else:
                self._data[:self._keep] = self._data[self._end - self._keep:self._end]
                self._end = self._keep
        self._data[self._end] = (t, buffered_ms)
        self._end += 1

    def __len__(self) -> int:
        return min(self._end, self._keep)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, buffered ms) of the kept points, oldest first: copies the caller owns."""
        kept = self._data[max(0, self._end - self._keep):self._end]
        return kept[:, 0].copy(), kept[:, 1].copy()
