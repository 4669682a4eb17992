"""The built-in offline voices as one Engine.

`available_engines()` constructs every offline engine that works on this machine (hibari, espeak-ng, piper)
and returns hints for the ones that do not ("espeak-ng not found: apt-get install espeak-ng").
`BuiltinEngine` serves them all through one server: its voices are the union of theirs (voice ids are
unique: "heart", "espeak:en-us", "piper:joe"...), its models are "builtin" plus each engine's own model id,
and `synthesize()` routes by **voice id alone**. The Engine protocol hands `synthesize()` no model, and the
OpenAI API itself lets any voice go with any model, so a request's `model` (validated by the server against
`models()`) only has to be one of the listed ids; "builtin" is the one a client needs to know.
Every sub-engine speaks at 24 kHz (they resample themselves), so the composite does too.

The audio helpers the engines share live in `audio` (this module and every engine import them from
there, so no engine module imports this one).

Threads: everything here runs on the server's asyncio loop; the blocking per-sentence work of each engine
runs on the worker its `synth` callable uses (`asyncio.to_thread`, or the engine's own executor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator, Iterable
from typing import Any

import numpy as np

from voicegui.server.engines.audio import SAMPLE_RATE
from voicegui.server.engines.base import Engine, EngineError, VoiceInfo

log = logging.getLogger(__name__)

BUILTIN_MODEL = "builtin"

class BuiltinEngine:
    """Several 24 kHz engines behind one Engine; routes `synthesize()` by voice id (module docstring)."""

    name = "builtin"
    sample_rate = SAMPLE_RATE

    def __init__(self, engines: Iterable[Engine]) -> None:
        self.engines = list(engines)
        self._by_voice: dict[str, Engine] = {}
        self._voices: list[VoiceInfo] = []
        for engine in self.engines:
            if engine.sample_rate != SAMPLE_RATE:
                raise ValueError(f"engine {engine.name} speaks at {engine.sample_rate} Hz, not {SAMPLE_RATE}")
            for voice in engine.voices():
                if voice.id in self._by_voice:
                    # Keep the first engine's voice: engines are passed best first.
                    log.warning("voice id %r of %s already offered by %s; skipped", voice.id, engine.name,
                                self._by_voice[voice.id].name)
                    continue
                self._by_voice[voice.id] = engine
                self._voices.append(voice)

    def models(self) -> list[str]:
        out = [BUILTIN_MODEL]
        for engine in self.engines:
            out.extend(m for m in engine.models() if m not in out)
        return out

    def voices(self) -> list[VoiceInfo]:
        return list(self._voices)

    def engine_for(self, voice: str) -> Engine:
        """The sub-engine that offers `voice`; EngineError if none does."""
        try:
            return self._by_voice[voice]
        except KeyError:
            raise EngineError(f"unknown voice {voice!r}") from None

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        """Yield the sub-engine's blocks for this voice; it releases its resources when we are closed."""
        async with contextlib.aclosing(self.engine_for(voice).synthesize(text, voice, speed)) as blocks:
            async for block in blocks:
                yield block

    def close(self) -> None:
        """Release sub-engines' workers (those that have a close())."""
        for engine in self.engines:
            close = getattr(engine, "close", None)
            if callable(close):
                close()


class LazyEngine:
    """A neural engine whose model is loaded on its first request (or by ``load()``), not at start-up.

    Loading hibari costs ~0.2 s (its tables and optimized model come from the user's cache), piper ~0.5 s; a
    `voicegui speak` with voice "heart" should not pay for piper. The voice list comes from the module's
    constants, so listing voices loads nothing.

    Threads: ``load()`` may run on any thread (a lock makes it happen once); ``synthesize()`` runs on the
    server's loop and, the first time, awaits ``load()`` in a worker thread so the loop never blocks.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, module: Any, warm: bool = True) -> None:
        self._module = module
        self._warm = warm
        self.name: str = module.ENGINE_NAME
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._closed = False

    def models(self) -> list[str]:
        return [self._module.MODEL_ID]

    def voices(self) -> list[VoiceInfo]:
        return list(self._module.VOICES)

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> Engine:
        with self._lock:
            if self._closed:
                raise EngineError(f"{self.name} engine is closed")
            if self._engine is None:
                try:
                    self._engine = self._module.create(warm=self._warm)
                except (OSError, RuntimeError, ValueError, ImportError) as exc:
                    raise EngineError(f"{self.name} failed to start: {exc}") from exc
            return self._engine

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        engine = self._engine if self._engine is not None else await asyncio.to_thread(self.load)
        async with contextlib.aclosing(engine.synthesize(text, voice, speed)) as blocks:
            async for block in blocks:
                yield block

    def close(self) -> None:
        with self._lock:
            self._closed = True
            engine, self._engine = self._engine, None
        close = getattr(engine, "close", None)
        if callable(close):
            close()


def available_engines(warm: bool = True, lazy: bool = False) -> tuple[list[Engine], list[str]]:
    """Construct every offline engine that works here: (engines, hints for the missing ones).

    Order is best voice first: hibari, piper, espeak-ng. `warm` runs one tiny synthesis per engine when it
    loads so the first request does not pay for setting up its kernels (hibari queues it on its worker, ahead
    of any request, without waiting for it). With `lazy`, the neural engines (hibari, piper) are LazyEngines that
    load on first use; espeak-ng is cheap and loads now.
    """
    # Imported here, not at module level: each pulls in its engine's libraries when first used.
    from voicegui.server.engines import espeak, hibari, piper

    engines: list[Engine] = []
    hints: list[str] = []
    for module in (hibari, piper, espeak):
        hint = module.missing()
        if hint:
            hints.append(hint)
            continue
        if lazy and hasattr(module, "VOICES"):
            engines.append(LazyEngine(module, warm=warm))
            continue
        try:
            engine = module.create(warm=warm)
        except (OSError, RuntimeError, ValueError, ImportError, EngineError) as exc:
            log.warning("%s engine failed to start: %s", module.__name__, exc)
            hints.append(f"{module.__name__.rsplit('.', 1)[-1]} failed to start: {exc}")
            continue
        engines.append(engine)
    return engines, hints
