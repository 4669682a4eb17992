"""Audio helpers the offline engines share (espeak, hibari, piper, the single-worker base, the composite).

`speakable()` (control characters out), `trim_silence()` (cut long leading/trailing silence to natural
gaps), `resample()` (exact-rate conversion with PyAV's libswresample, one whole sentence at a time, so it is
streaming-safe), and `synthesize_ahead()` (run one sentence's synthesis while the previous one is being
yielded). Every engine speaks at `SAMPLE_RATE`.

Threads: `synthesize_ahead` runs on the server's asyncio loop; the others are pure functions, called on
whichever thread synthesises (the loop or an engine's worker).
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import TypeVar

import numpy as np

SAMPLE_RATE = 24000

# Anything quieter than -50 dBFS is silence for trimming: engines' "silent" padding sits at -80..-140 dBFS,
# the quietest speech onsets (breathy h, s) around -40 dBFS.
SILENCE_THRESHOLD = 10 ** (-50 / 20)
# Natural gaps: <= 10 ms before the first sound of a sentence, <= 140 ms after its last sound, so sentences are
# still at most 150 ms apart. The gap sits after the sentence, not before it: silence kept before the first
# sentence is heard as latency (with 50 ms kept there, a Speak's first sound came ~40 ms after its first audio).
KEEP_LEAD_S = 0.01
KEEP_TAIL_S = 0.14

T = TypeVar("T")


def speakable(text: str) -> str:
    """The text with control characters (NUL, ESC...) turned into spaces; whitespace is kept.

    Engines choke on them (piper raises on NUL) and none of them is speakable anyway.
    """
    if all(c.isprintable() or c.isspace() for c in text):
        return text
    return "".join(" " if unicodedata.category(c) == "Cc" and not c.isspace() else c for c in text)


def trim_silence(audio: np.ndarray, sample_rate: int, keep_lead_s: float = KEEP_LEAD_S,
                 keep_tail_s: float = KEEP_TAIL_S, threshold: float = SILENCE_THRESHOLD) -> np.ndarray:
    """Cut leading/trailing silence down to at most `keep_lead_s` / `keep_tail_s`; shorter gaps are kept.

    `audio` is float32 in [-1, 1]. All-silent audio comes back empty. Returns a view, not a copy.
    """
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    start = max(0, int(loud[0]) - int(round(keep_lead_s * sample_rate)))
    end = min(len(audio), int(loud[-1]) + 1 + int(round(keep_tail_s * sample_rate)))
    return audio[start:end]


# The engines whose voices speak at another rate (22050 Hz) and go through `resample` (PyAV) sentence by
# sentence: importing PyAV (~40 ms) is part of their first synthesis in a process (cli/builtin_process.py
# imports it ahead).
RESAMPLING_ENGINES = frozenset({"espeak-ng", "piper"})


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample one complete mono clip (float32 or int16) to float32 at `to_rate`.

    A new libswresample context per clip, flushed at its end, so no samples are held back between
    sentences. The output length is round(len * to_rate / from_rate) within a sample or two.
    """
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if from_rate == to_rate or audio.size == 0:
        return audio
    # Imported here: the window lists the built-in engines (importing this module) before it is shown.
    import av

    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else audio[:0]


async def synthesize_ahead(pieces: Iterable[str], synth: Callable[[str], Awaitable[T]]) -> AsyncGenerator[T, None]:
    """Yield synth(piece) for each piece in order, starting the next piece's synthesis before yielding.

    So the consumer encodes and sends sentence n while sentence n+1 is being synthesised, and the first
    audio leaves after one sentence's work. At most one synthesis runs ahead. If the consumer stops early
    (aclose()), the one in flight is cancelled (a worker thread already running finishes on its own).
    """
    it = iter(pieces)
    first = next(it, None)
    if first is None:
        return
    pending: asyncio.Future[T] | None = asyncio.ensure_future(synth(first))
    try:
        for piece in it:
            assert pending is not None
            result = await pending
            pending = asyncio.ensure_future(synth(piece))
            yield result
        assert pending is not None
        result = await pending
        pending = None
        yield result
    finally:
        if pending is not None:
            if pending.done():
                if not pending.cancelled():
                    # Mark a failure in the abandoned look-ahead as retrieved: nobody will hear it.
                    pending.exception()
            else:
                pending.cancel()

