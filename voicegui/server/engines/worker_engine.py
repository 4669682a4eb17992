"""SingleWorkerEngine: the shared shape of a one-voice neural engine whose model lives on one worker thread.

Subclasses load their model on that thread and implement ``_synth_piece(text, speed)`` (one sentence ->
trimmed float32 at 24 kHz). This class splits the text into sentences and yields each one as soon as it is
ready while the next is already being synthesised (``synthesize_ahead``).

Threads: the model is owned by one dedicated worker thread (``ThreadPoolExecutor(max_workers=1)``), because
neither ONNX sessions with their phonemisers nor their C libraries are known to be thread-safe, and one
intra-op thread is their fastest setting here anyway; concurrent requests interleave there sentence by
sentence. ``synthesize()`` runs on the server's asyncio loop and only awaits that worker.

Memory: the models run without onnxruntime's arena (onnx_cache.lean_options), so a sentence's buffers go back to
the C allocator when it is done; after each request the worker hands the allocator's free pages back to the
system (``release_freed_memory``, queued behind any other request's sentences, so it never delays one), so an
idle engine holds what its loaded model needs, not its busiest sentence. Each sentence a stream synthesised is
kept a while (recent_audio.py, at most 32 MiB for 10 min) for the timings route, which would otherwise synthesise
it again.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ctypes
import logging
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from voicegui.server.engines.audio import speakable, synthesize_ahead
from voicegui.server.engines.base import EngineError
from voicegui.server.engines.recent_audio import RecentAudio, reusing
from voicegui.text import split_sentences

log = logging.getLogger(__name__)

# ~300 characters keeps one model call per piece and bounds the time to first audio of a long sentence.
MAX_CHARS = 300


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS, Windows). The process's own
    symbols (CDLL(None)) include the C library's: ctypes.util.find_library would run ldconfig to name it."""
    return getattr(ctypes.CDLL(None), "malloc_trim", None)


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Hand the C allocator's free pages back to the system (glibc: malloc_trim(0)); True if it returned any.
    Freed memory otherwise stays resident in the allocator, sized by the largest sentence so far."""
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))


class SingleWorkerEngine(abc.ABC):
    name: str
    voice_id: str

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._closed = False
        self._recent = RecentAudio()  # the sentences streamed lately, for the timings route (recent_audio.py)

    @abc.abstractmethod
    def _synth_piece(self, text: str, speed: float) -> np.ndarray:
        """One sentence -> trimmed float32 mono at 24 kHz; runs on the worker thread."""

    async def _synth_async(self, text: str, speed: float) -> np.ndarray:
        """One sentence's audio: for a stream, synthesised and kept a while; for the timings route
        (recent_audio.reusing()), the same sentence's kept audio if there is any, else synthesised."""
        key = (text, speed)
        if reusing():
            kept = self._recent.take(key)
            if kept is not None:
                return kept
        loop = asyncio.get_running_loop()
        try:
            audio = await loop.run_in_executor(self._executor, self._synth_piece, text, speed)
        except (KeyError, ValueError, IndexError) as exc:
            # The model's G2P rejecting some text; the server reports it as an engine error.
            raise EngineError(f"{self.name} could not speak {text[:40]!r}: {exc}") from exc
        if not reusing():
            self._recent.keep(key, audio)
        return audio

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        """Yield one float32 block per sentence (trimmed), prefetching the next sentence; then the worker hands
        the request's freed memory back (see the module docstring)."""
        if voice != self.voice_id:
            raise EngineError(f"{self.name} has no voice {voice!r}")
        if self._closed:
            raise EngineError(f"{self.name} engine is closed")
        pieces = split_sentences(speakable(text), MAX_CHARS)
        try:
            async with contextlib.aclosing(synthesize_ahead(pieces, lambda s: self._synth_async(s, speed))) as gen:
                async for audio in gen:
                    if audio.size:
                        yield audio
        finally:
            if not self._closed:
                try:
                    self._executor.submit(release_freed_memory)
                except RuntimeError:  # closed meanwhile: its thread and memory go with it
                    log.debug("%s closed before its memory was released", self.name)

    def close(self) -> None:
        """Stop the worker thread (pending sentences are dropped)."""
        self._closed = True
        self._recent.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
