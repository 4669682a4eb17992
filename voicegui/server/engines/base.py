"""The Engine protocol: what the built-in speech server needs from a text-to-speech engine.

An engine names its models and voices and turns text into a stream of mono audio blocks at its own
`sample_rate`. The server encodes those blocks to the requested format as they come, so an engine that yields
early (per sentence, per 20 ms...) gives a low time to first byte.

Threads: `synthesize()` is an async generator consumed on the server's asyncio loop. An engine whose work
blocks (a neural model, a C library) must move that work off the loop itself (`asyncio.to_thread`,
`loop.run_in_executor`) and hand the blocks back; it must never block the loop for more than a few ms.
When the client goes away the server stops iterating and closes the generator (`aclose()`), so engines
should release per-request resources in `finally`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class VoiceInfo:
    """One voice as listed by GET /v1/audio/voices."""

    id: str
    name: str
    language: str
    engine: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "language": self.language, "engine": self.engine}


class EngineError(Exception):
    """An engine could not synthesise this request (bad text for it, missing data...).

    The server answers 500 with the message if nothing was sent yet; mid-stream it aborts the response.
    """


@runtime_checkable
class Engine(Protocol):
    """A text-to-speech engine the server can serve. See the module docstring for threading rules."""

    name: str
    sample_rate: int

    def models(self) -> list[str]:
        """Model ids this engine answers to (the request's `model` must be one of them)."""
        ...

    def voices(self) -> list[VoiceInfo]:
        """Voices this engine offers (the request's `voice` must be one of their ids)."""
        ...

    def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        """Yield mono blocks (float32 in [-1, 1] or int16) at `sample_rate`, as soon as each is ready.

        Implemented as `async def synthesize(...)` with `yield` (an async generator).
        """
        ...
