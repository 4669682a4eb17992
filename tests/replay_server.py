"""The built-in speech server replaying a 2 s clip on 127.0.0.1, shared by the server and stream tests.

`engine` (one ReplayEngine per test module: it only reads its samples) and `server` (a fresh ServerThread per
test: tests change its shaping and read `records` from the first request on) are pytest fixtures, made
available to tests/server/ and tests/stream/ by their conftest.py. A module may override `engine` (another
clip); `server` then serves that one. `speech_body()` is a valid /audio/speech request body and
`record_ended()` waits for the server's record of a request, on the test's loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server import clip
from voicegui.server.app import RequestRecord
from voicegui.server.engines.replay import ReplayEngine
from voicegui.server.thread import ServerThread

CLIP_SECONDS = 2.0


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> ReplayEngine:
    return ReplayEngine(clip.write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", CLIP_SECONDS))


@pytest.fixture
def server(engine: ReplayEngine) -> Iterator[ServerThread]:
    with ServerThread(engine) as srv:
        yield srv


def speech_body(**over: Any) -> dict[str, Any]:
    """A valid /audio/speech body (pcm) with `over` applied; a field set to None is left out."""
    body = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", "response_format": "pcm"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


async def record_ended(server: ServerThread, index: int = 0, timeout_s: float = 5.0) -> RequestRecord:
    """server.records[index] (the first request by default, -1 the newest) once the server is done with it: the
    client may finish reading before the server has recorded the end."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            rec = server.records[index]
        except IndexError:
            rec = None
        if rec is not None and rec.ended_at is not None:
            return rec
        await asyncio.sleep(0.01)
    raise AssertionError(f"request {index} did not end on the server: {server.records}")
