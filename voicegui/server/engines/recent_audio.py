"""The audio an engine streamed lately, kept for the timings route's asking for the same sentences again.

The window asks the built-in server for a Speak's read-along timings (POST /dev/captioned_speech) right after
its stream (/v1/audio/speech) has come in: for a neural voice (hibari, piper) that route synthesises each
sentence again, on its own, to know where it starts and ends. That doubled the engine's CPU for every Speak in
the window (it runs in the window's process, while the Speak plays), and, the models drawing random noise,
gave timings of audio that was not quite the audio played. Now an engine keeps each sentence it synthesised
for a stream, and the timings route (inside `reusing_recent_audio()`) takes the same sentence, at the same
speed, from there instead of synthesising it again: once (taken is gone), and only within MAX_AGE_S. A
sentence not kept (another text, a speed changed, too old, pushed out) is synthesised as before.

Streams never take from here: two Speaks of the same text synthesise twice, so a benchmark that repeats a
sentence measures the engine, not this. What is kept is bounded (MAX_BYTES, the oldest go first: a full
4096-character request is ~28 MB of float32 at 24 kHz) and dropped once MAX_AGE_S old (at the next keep or
take, so an idle engine may hold the last Speak's audio until its next request).

Threads: the server's asyncio loop only (the engine's `_synth_async`, which awaits its worker); the flag is a
context variable, so it follows the timings route's task into the tasks it starts (a sentence synthesised
ahead) and nothing else.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextvars import ContextVar

import numpy as np

MAX_BYTES = 32 * 1024 * 1024
# The window asks once the whole stream has come in, and the stream comes in at the pace it plays once the
# client's buffer (10 s by default) is full: a 4096-character request (~4.5 min of audio) takes ~4.3 min. At
# 60 s all but its last minute were synthesised again, while its last seconds played, and for the voices that
# draw noise that audio differed, so the window dropped those timings as contradicted.
MAX_AGE_S = 600.0

_REUSING: ContextVar[bool] = ContextVar("voicegui_reusing_recent_audio", default=False)


@contextlib.contextmanager
def reusing_recent_audio() -> Iterator[None]:
    """Within this block (and the tasks it starts), engines take the sentences they streamed lately."""
    token = _REUSING.set(True)
    try:
        yield
    finally:
        _REUSING.reset(token)


def reusing() -> bool:
    """Whether the caller is inside `reusing_recent_audio()`."""
    return _REUSING.get()


class RecentAudio:
    """Blocks of audio by key (a sentence and its speed), the newest last; see the module docstring."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._clock = clock
        self._kept: OrderedDict[Hashable, tuple[float, np.ndarray]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def keep(self, key: Hashable, audio: np.ndarray) -> None:
        """Keep `audio` under `key` (replacing what was there), then drop the oldest beyond the bounds."""
        self._drop(key)
        if audio.nbytes <= self._max_bytes:
            self._kept[key] = (self._clock(), audio)
            self._bytes += audio.nbytes
        self._expire()
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._kept)))

    def take(self, key: Hashable) -> np.ndarray | None:
        """The audio kept under `key`, no longer kept; None if there is none (or it is too old)."""
        self._expire()
        return self._drop(key)

    def clear(self) -> None:
        self._kept.clear()
        self._bytes = 0

    def _drop(self, key: Hashable) -> np.ndarray | None:
        """The audio kept under `key`, no longer kept (None if there is none)."""
        kept = self._kept.pop(key, None)
        if kept is None:
            return None
        self._bytes -= kept[1].nbytes
        return kept[1]

    def _expire(self) -> None:
        oldest_kept = self._clock() - self._max_age_s
        while self._kept:
            key, (at, _audio) = next(iter(self._kept.items()))
            if at >= oldest_kept:
                break
            self._drop(key)
