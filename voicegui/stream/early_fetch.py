"""EarlyFetch: send a speech request now, before the rest of the streaming stack is imported, and hand what
arrives to the session that plays it once that session exists.

Why: a fresh `voicegui speak` process needs the openai SDK to send its request and numpy, PortAudio and the
decoders to play the answer; each is ~0.1-0.3 s of imports on the GIL. Sending the request as soon as the SDK
is in lets the server work (and the network carry the answer) while the audio stack is imported and the
device opened, instead of after.

`EarlyFetch(request)` starts `fetch_speech(request)` as a task on the running loop; the bytes it
receives wait in memory (at most `max_held_bytes`, 1 MiB by default: past it the fetch waits, and TCP holds
the rest at the server) until a session calls `source`. `source` has fetch_speech's signature
`(req, marks, on_chunk) -> int` (SpeakOptions.source): for the request it was started with, it hands on the
held bytes in order, each with the time it arrived (`on_chunk(data, arrived)`: the prebuffer policy measures
the delivery, not the moment it was handed on), then the rest as it arrives, and returns the body's length;
its marks (request sent, headers, first byte, response headers and what the fetch learned) are copied into the
session's marks before each chunk and at the end. Any other request (the later pieces of a long text) is
fetched as usual. A failed fetch raises its FetchError from `source`, as fetch_speech would; a session that is cancelled
cancels the fetch; `aclose()` ends a fetch no session took (an error before playback started).

Only for /audio/speech requests: a Realtime model's request goes through the session's own fetch_realtime.

Threads: everything runs on one asyncio loop thread (asyncio.run's in the CLI). Imports nothing of numpy,
PortAudio or PyAV.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque

from voicegui.stream.fetch import FetchMarks, SpeechRequest, TimedOnChunk, fetch_speech

MAX_HELD_BYTES = 1 << 20


class EarlyFetch:
    """One request in flight before its session exists (see the module docstring)."""

    def __init__(self, request: SpeechRequest, max_held_bytes: int = MAX_HELD_BYTES) -> None:
        """Start fetching `request` on the running loop (at its next turn)."""
        self.request = request
        self.max_held_bytes = max_held_bytes
        self.started = time.monotonic()  # when the Speak began: the TTFA's origin
        self.marks = FetchMarks()
        self._held: deque[tuple[bytes, float]] = deque()  # (chunk, when it arrived)
        self._held_bytes = 0
        # Each is cleared only by the one side that waits for it: the fetch waits for room, the source for a chunk.
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._taken = False
        self._task = asyncio.create_task(fetch_speech(request, self.marks, self._hold))

    async def sent(self, written: bool = True) -> None:
        """Return once the request has been written to the socket (or its answer has begun, or the fetch has
        ended): until then the SDK is still building it, connecting and writing, all on this thread, and imports
        started on other threads would take the GIL from it. With `written` false, once the fetch has begun
        (`marks.request_sent`, set before the SDK builds the request). fetch_speech only sets marks, so this
        looks every 2 ms; it is awaited once per command."""
        marks = self.marks

        def out() -> bool:
            return marks.request_written is not None if written else marks.request_sent is not None

        while not out() and marks.headers is None and not self._task.done():
            await asyncio.sleep(0.002)

    @property
    def bytes_held(self) -> int:
        return self._held_bytes

    async def _hold(self, chunk: bytes) -> None:
        # Past the limit the fetch waits here: the socket is not read, so TCP holds the rest at the server.
        while self._held_bytes >= self.max_held_bytes:
            self._room.clear()
            await self._room.wait()
        self._held.append((chunk, time.monotonic()))
        self._held_bytes += len(chunk)
        self._arrived.set()

    def _copy_marks(self, marks: FetchMarks) -> None:
        if marks is not self.marks:
            for f in dataclasses.fields(FetchMarks):
                setattr(marks, f.name, getattr(self.marks, f.name))

    async def source(self, req: SpeechRequest, marks: FetchMarks, on_chunk: TimedOnChunk) -> int:
        """fetch_speech's signature: the early request's body for its own request (once), else a new fetch."""
        if req is not self.request or self._taken:
            return await fetch_speech(req, marks, on_chunk)
        self._taken = True
        task = self._task
        try:
            while True:
                if self._held:
                    chunk, arrived = self._held.popleft()
                    self._held_bytes -= len(chunk)
                    self._room.set()  # for a fetch waiting at the limit
                    self._copy_marks(marks)
                    await on_chunk(chunk, arrived)
                    continue
                if task.done():
                    break
                self._arrived.clear()
                waiter = asyncio.ensure_future(self._arrived.wait())
                try:
                    await asyncio.wait((waiter, task), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
            self._copy_marks(marks)
            return task.result()  # raises the fetch's FetchError, as fetch_speech would
        except BaseException:
            task.cancel()
            raise

    async def aclose(self) -> None:
        """End the request if no session took it (nothing left to end if one did), and wait until the fetch has
        closed its connection; safe to call again."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
