"""Preallocated single-producer / single-consumer float32 ring buffer.

Threads: exactly one producer thread calls ``write`` and exactly one consumer thread calls ``read_into``.
In voicegui the producer of the playback ring is the asyncio loop (decoded frames) and the consumer is the
PortAudio callback thread; the "played" ring runs the other way round. No locks: each index is written by
one side only, and a Python int assignment is atomic under the GIL, so the other side sees either the old or
the new value, both of which are safe (it merely sees a little less data or space than there is).
"""

from __future__ import annotations

import numpy as np


class FloatRing:
    """A fixed-capacity ring of float32 samples; never allocates after construction."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self._buf = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        # Monotonic counters: total frames ever written / read. Only the producer writes _written,
        # only the consumer writes _read; their difference is the fill level.
        self._written = 0
        self._read = 0

    @property
    def available(self) -> int:
        """Frames that can be read now."""
        return self._written - self._read

    @property
    def space(self) -> int:
        """Frames that can be written now."""
        return self.capacity - (self._written - self._read)

    @property
    def total_written(self) -> int:
        return self._written

    @property
    def total_read(self) -> int:
        return self._read

    def write(self, frames: np.ndarray) -> int:
        """Copy as many of ``frames`` as fit; returns how many were taken (producer side only)."""
        n = min(len(frames), self.space)
        if n <= 0:
            return 0
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = frames[:first]
        if n > first:
            self._buf[: n - first] = frames[first:n]
        self._written += n
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Fill the front of ``out`` with up to len(out) frames; returns how many (consumer side only)."""
        n = min(len(out), self._written - self._read)
        if n <= 0:
            return 0
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out[:first] = self._buf[start : start + first]
        if n > first:
            out[first:n] = self._buf[: n - first]
        self._read += n
        return n

    def discard(self) -> int:
        """Drop everything buffered (consumer side only); returns how many frames were dropped."""
        n = self._written - self._read
        self._read = self._written
        return n
