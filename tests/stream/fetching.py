"""Helpers for the fetch_speech tests (plain and sse): a request to a test server, a collector of the chunks
handed to on_chunk, and one fetch that must succeed or fail."""

from __future__ import annotations

from typing import Any

import pytest

from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, fetch_speech


def speech_request(base_url: str, **over: Any) -> SpeechRequest:
    """A pcm request for "Hello there." to `base_url` with a 10 s timeout, `over` applied."""
    fields: dict[str, Any] = dict(base_url=base_url, api_key="test-key", model="tts-1", voice="alloy",
                                  text="Hello there.", response_format="pcm", timeout_s=10.0)
    fields.update(over)
    return SpeechRequest(**fields)


class Collector:
    """An on_chunk that keeps every chunk, in order."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.arrived: list[float | None] = []  # the time a source said each chunk arrived (None: not said)

    async def __call__(self, chunk: bytes, arrived: float | None = None) -> None:
        self.chunks.append(chunk)
        self.arrived.append(arrived)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


async def fetch(req: SpeechRequest) -> tuple[int, FetchMarks, Collector]:
    """fetch_speech(req): (the total it returned, its marks, what on_chunk got)."""
    marks, col = FetchMarks(), Collector()
    total = await fetch_speech(req, marks, col)
    return total, marks, col


async def fetch_fails(req: SpeechRequest) -> tuple[FetchError, FetchMarks, Collector]:
    """fetch_speech(req), which must raise FetchError: (the error, the marks, what on_chunk got first)."""
    marks, col = FetchMarks(), Collector()
    with pytest.raises(FetchError) as info:
        await fetch_speech(req, marks, col)
    return info.value, marks, col
