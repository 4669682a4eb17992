"""HibariEngine: the hibari-tts neural voice "heart" (American English, 24 kHz float32, Apache-2.0), offline.

Only "heart" ships inside the hibari-tts wheel; its other voices download a model on first use, so they
are never offered (and `voice_path(..., download_missing=False)` guards the bundled one).

A request is cut into sentences (`voicegui.text.split_sentences`); each sentence is synthesised on the
engine's single worker thread and yielded, trimmed of hibari's long padding (~0.3 s before, ~0.45 s after
each sentence) down to natural gaps, as soon as it is ready, while the next sentence is already being
synthesised (`synthesize_ahead`). So the first audio leaves after one sentence's work (~10-40 ms warm).
`speed` goes to hibari's own duration control: 0.25-2 is honoured (measured 0.27x-1.8x speech length
ratio), above 2 the model saturates near 2x (speed 4 gives ~2x); no time-stretch is added on top.

Memory (measured with hibari-tts 0.2.1 / onnxruntime 1.32; `tests/test_memory.py` bounds it): hibari as it comes
held ~150 MB resident once loaded and warm, ~100 MB of it its G2P tables as Python dicts, against an 8 MB model.
Here the G2P is hibari's own over packed tables (`hibari_g2p.py`, ~12 MB of arrays; kept in the user's cache after
the first start and memory-mapped from there, ~0.015 s of CPU instead of building them in ~1 s; ~7 MB of them
resident after the warm-up), and the ONNX sessions are built with onnxruntime's arena and memory-pattern planner
off: the arena keeps the largest sentence's buffers (~30 MB of model outputs for a 400-phoneme sentence, more for
the planner's copies) for good. Those buffers and numpy's signal processing go back to the C allocator after each
sentence; after the warm-up and after each request the worker hands the freed pages back to the system
(worker_engine.release_freed_memory), so an idle engine holds what a loaded model needs, not its busiest sentence.
The sessions load an optimized copy of their model kept in the user's cache (onnx_cache.py), so a later start
does not optimize the graph again.

Threads: the `hibari.Hibari` object (ONNX session, G2P lexicons) is owned by one dedicated worker thread
(`ThreadPoolExecutor(max_workers=1)`): its G2P is not known to be thread-safe, and one onnxruntime
intra-op thread is its fastest setting anyway. Concurrent requests interleave sentence by sentence there.
`synthesize()` runs on the server's asyncio loop and only awaits that worker. The constructor returns once the
model is loaded; the warm-up sentence is queued on the worker ahead of any request, not awaited.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from concurrent.futures import Future
from typing import Any

import numpy as np

from voicegui.app_dirs import cache_dir
from voicegui.server.engines.audio import SAMPLE_RATE, trim_silence
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.engines.onnx_cache import cached_session, lean_options
from voicegui.server.engines.worker_engine import SingleWorkerEngine, release_freed_memory

log = logging.getLogger(__name__)

MODEL_ID = "hibari"
VOICE_ID = "heart"
ENGINE_NAME = "hibari"
# Known without loading the model, so the voice list needs no model load (see builtin.LazyEngine).
VOICES = (VoiceInfo(id=VOICE_ID, name="Heart (hibari)", language="en-US", engine=ENGINE_NAME),)
WARM_UP = "Warm up."  # spoken once after loading, on the worker, before any request


def missing() -> str | None:
    """None if hibari-tts can be used here, else a hint to install it."""
    if importlib.util.find_spec("hibari") is None or importlib.util.find_spec("onnxruntime") is None:
        return "hibari-tts not installed: pip install hibari-tts"
    return None


def create(warm: bool = True) -> HibariEngine:
    return HibariEngine(warm=warm)


def new_session(path: str) -> Any:
    """An onnxruntime InferenceSession on the CPU for the model at `path`, with onnx_cache.lean_options (one
    thread: hibari's fastest setting, see the module docstring), loaded from its optimized copy in the user's
    cache (onnx_cache.py: made on the first start)."""
    import onnxruntime as ort  # type: ignore[import-untyped]

    return cached_session(path, lambda: lean_options(ort), cache_dir() / "engines")


class LazyOov:
    """hibari's out-of-vocabulary reader (a 3 MB ONNX model), loaded by `new_session` on the first word
    no lexicon knows (hibari also loads it lazily, but with its own options)."""

    def __init__(self) -> None:
        self._oov: Any = None

    def __call__(self, word: str) -> str | None:
        if self._oov is None:
            from hibari.g2p import ASSETS
            from hibari.g2p.oov import OOV

            path = os.path.join(ASSETS, "oov.onnx")
            self._oov = OOV(path, session=new_session(path))
        result: str | None = self._oov(word)
        return result


class HibariEngine(SingleWorkerEngine):
    """hibari-tts's bundled voice "heart". See the module docstring."""

    name = ENGINE_NAME
    sample_rate = SAMPLE_RATE
    voice_id = VOICE_ID

    def __init__(self, warm: bool = True, seed: int | None = None) -> None:
        super().__init__()
        self._seed = seed
        self._tts: Any = None
        # Load on the worker so the thread that owns the model is the one that made it.
        self._executor.submit(self._load).result()
        if warm:
            # Queued, not awaited: the voice is ready once loaded, ~30-50 ms sooner (issue 17). A request that
            # comes meanwhile runs after it on the same worker, and the warm-up saves its first sentence ~20 ms.
            self._executor.submit(self._warm_up).add_done_callback(_report_warm_up)

    def _load(self) -> None:
        import hibari
        from hibari.voices import VOICES as HIBARI_VOICES, voice_path

        if hibari.SAMPLE_RATE != SAMPLE_RATE:
            raise RuntimeError(f"hibari speaks at {hibari.SAMPLE_RATE} Hz, expected {SAMPLE_RATE}")
        if not HIBARI_VOICES.get(VOICE_ID, {}).get("bundled"):
            raise RuntimeError(f"this hibari-tts has no bundled voice {VOICE_ID!r}")
        # Never download: a missing bundled file is an error, not a fetch.
        model = voice_path(VOICE_ID, download_missing=False)
        self._tts = _build_hibari(hibari.Hibari, model)
        release_freed_memory()

    def _warm_up(self) -> None:
        """The first synthesis sets up the rest of onnxruntime's kernels; its freed buffers go back."""
        self._tts(WARM_UP, seed=0)
        release_freed_memory()

    def models(self) -> list[str]:
        return [MODEL_ID]

    def voices(self) -> list[VoiceInfo]:
        return list(VOICES)

    def _synth_piece(self, text: str, speed: float) -> np.ndarray:
        """One sentence -> trimmed float32 audio at 24 kHz. Runs on the worker thread."""
        parts = list(self._tts.stream(text, speed=speed, seed=self._seed))
        if not parts:
            return np.zeros(0, np.float32)
        audio = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return trim_silence(np.asarray(audio, dtype=np.float32), SAMPLE_RATE)


def _report_warm_up(done: Future[None]) -> None:
    """Log a warm-up that failed (the voice was offered already: its first request will fail alike and say so)."""
    if not done.cancelled() and done.exception() is not None:
        log.warning("hibari's warm-up sentence failed (%s): its requests may fail the same way", done.exception())


def _build_hibari(hibari_class: Any, model: str) -> Any:
    """A `hibari.Hibari` for the bundled voice with our session options and the packed G2P. Hibari's
    constructor takes neither, so this sets the attributes it sets (hibari-tts 0.2: voice, model_path, sess,
    vocab, _g2p), the way it sets them."""
    from voicegui.server.engines.hibari_g2p import CompactG2P, load_asset

    tts = hibari_class.__new__(hibari_class)
    tts.voice = VOICE_ID
    tts.model_path = model
    # Mapped from the user's cache after the first start, which builds it (~1 s). Before the session: on that
    # first start the parsed JSON leaves ~20 MB of holes in the worker's heap, which the session's buffers then
    # fill instead of growing it (measured: 145 -> 126 MB resident once loaded; later starts alike either way).
    tts._g2p = CompactG2P.cached(cache_dir() / "engines", oov=LazyOov())
    tts.sess = new_session(model)
    tts.vocab = load_asset("vocab.json")
    return tts
