"""A speech "source" that replays cached response bytes instead of asking a server.

`replay_source(data)` returns an async function with fetch_speech's signature `(req, marks, on_chunk) -> int`.
Handed to a SpeakSession in place of fetch_speech (SpeakOptions.source), a Speak from history plays through
exactly the same decode -> ring -> output -> plots path as a live one, with no request at all: the request's
base URL, key and text are ignored; its response_format still picks the decoder.

The bytes go to `on_chunk` in pieces of `chunk_bytes`, awaited one at a time, so the session's backpressure
works as with the network (a full ring stops the replay). Between pieces the source yields to the loop
(`asyncio.sleep(0)`) so a Stop, the monitor and the GUI's timers keep running; it does not pace itself to
real time: the playback ring and the device do that.

Marks: request_sent, headers and first_byte are set as the replay starts (all on time.monotonic()), so the
TTFA breakdown of a replay shows the client's own share (decode + prebuffer + device) with no network.

Threads: runs on the caller's asyncio loop; holds only a reference to `data`. Cancellation propagates. Qt-free.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voicegui.stream.fetch import FetchMarks, SpeechRequest

OnChunk = Callable[[bytes], Awaitable[None]]
Source = Callable[[SpeechRequest, FetchMarks, OnChunk], Awaitable[int]]


def replay_source(data: bytes, chunk_bytes: int = 1024) -> Source:
    """An async `(req, marks, on_chunk) -> int` that feeds `data` to on_chunk; returns len(data)."""
    if chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive")
    payload = bytes(data)  # a private immutable copy: the caller may reuse its buffer

    async def source(req: SpeechRequest, marks: FetchMarks, on_chunk: OnChunk) -> int:
        # A request's own chunk size, if set, wins: the user's --chunk-bytes knob applies to replays too.
        step = req.chunk_bytes or chunk_bytes
        now = time.monotonic()
        marks.request_sent = now
        marks.headers = now
        total = 0
        for start in range(0, len(payload), step):
            piece = payload[start:start + step]
            if marks.first_byte is None:
                marks.first_byte = time.monotonic()
            total += len(piece)
            await on_chunk(piece)
            await asyncio.sleep(0)  # let Stop/monitor/GUI timers run between pieces
        return total

    return source
