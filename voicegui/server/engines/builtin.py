"""The built-in offline voices as one Engine, plus the audio helpers those engines share.

`available_engines()` constructs every offline engine that works on this machine (hibari, espeak-ng, piper)
and returns hints for the ones that do not ("espeak-ng not found: apt-get install espeak-ng").
`BuiltinEngine` serves them all through one server: its voices are the union of theirs (voice ids are
unique: "heart", "espeak:en-us", "piper:joe"...), its models are "builtin" plus each engine's own model id,
and `synthesize()` routes by **voice id alone**. The Engine protocol hands `synthesize()` no model, and the
OpenAI API itself lets any voice go with any model, so a request's `model` (validated by the server against
`models()`) only has to be one of the listed ids; "builtin" is the one a client needs to know.
Every sub-engine speaks at 24 kHz (they resample themselves), so the composite does too.

Shared helpers: `speakable()` (control characters out), `trim_silence()` (cut long leading/trailing silence
to natural gaps), `resample()` (exact-rate conversion with PyAV's libswresample, one whole sentence at a
time, so it is streaming-safe), and `synthesize_ahead()` (run one sentence's synthesis while the previous
one is being yielded).

Threads: everything here runs on the server's asyncio loop; the blocking per-sentence work of each engine
runs on the worker its `synth` callable uses (`asyncio.to_thread`, or the engine's own executor).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import unicodedata
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import av
import numpy as np

from voicegui.server.engines.base import Engine, EngineError, VoiceInfo

log = logging.getLogger(__name__)

SAMPLE_RATE = 24000
BUILTIN_MODEL = "builtin"

# Anything quieter than -50 dBFS is silence for trimming: engines' "silent" padding sits at -80..-140 dBFS,
# the quietest speech onsets (breathy h, s) around -40 dBFS.
SILENCE_THRESHOLD = 10 ** (-50 / 20)
# Natural gaps: <= 50 ms before the first sound of a sentence (the first audio leaves almost at once),
# <= 100 ms after its last sound, so sentences are at most 150 ms apart.
KEEP_LEAD_S = 0.05
KEEP_TAIL_S = 0.10

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
        gen = self.engine_for(voice).synthesize(text, voice, speed)
        try:
            async for block in gen:
                yield block
        finally:
            await gen.aclose()

    def close(self) -> None:
        """Release sub-engines' workers (those that have a close())."""
        for engine in self.engines:
            close = getattr(engine, "close", None)
            if callable(close):
                close()


class LazyEngine:
    """A neural engine whose model is loaded on its first request (or by ``load()``), not at start-up.

    Loading hibari or piper costs ~0.5 s each; a `voicegui speak` with voice "heart" should not pay for
    piper. The voice list comes from the module's constants, so listing voices loads nothing.

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
        gen = engine.synthesize(text, voice, speed)
        try:
            async for block in gen:
                yield block
        finally:
            await gen.aclose()

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
    loads so the first request does not pay for loading lexicons (~0.3 s for hibari). With `lazy`, the
    neural engines (hibari, piper) are LazyEngines that load on first use; espeak-ng is cheap and loads now.
    """
    # Imported here, not at module level: the engine modules import this one's helpers.
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
