"""HibariEngine: the hibari-tts neural voice "heart" (American English, 24 kHz float32, Apache-2.0), offline.

Only "heart" ships inside the hibari-tts wheel; its other voices download a model on first use, so they
are never offered (and `voice_path(..., download_missing=False)` guards the bundled one).

A request is cut into sentences (`voicegui.text.split_sentences`); each sentence is synthesised on the
engine's single worker thread and yielded, trimmed of hibari's long padding (~0.3 s before, ~0.45 s after
each sentence) down to natural gaps, as soon as it is ready, while the next sentence is already being
synthesised (`synthesize_ahead`). So the first audio leaves after one sentence's work (~10-40 ms warm).
`speed` goes to hibari's own duration control: 0.25-2 is honoured (measured 0.27x-1.8x speech length
ratio), above 2 the model saturates near 2x (speed 4 gives ~2x); no time-stretch is added on top.

Threads: the `hibari.Hibari` object (ONNX session, G2P lexicons) is owned by one dedicated worker thread
(`ThreadPoolExecutor(max_workers=1)`): its G2P is not known to be thread-safe, and one onnxruntime
intra-op thread is its fastest setting anyway. Concurrent requests interleave sentence by sentence there.
`synthesize()` runs on the server's asyncio loop and only awaits that worker.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import numpy as np

from voicegui.server.engines.audio import SAMPLE_RATE, trim_silence
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.engines.worker_engine import SingleWorkerEngine

log = logging.getLogger(__name__)

MODEL_ID = "hibari"
VOICE_ID = "heart"
ENGINE_NAME = "hibari"
# Known without loading the model, so the voice list needs no model load (see builtin.LazyEngine).
VOICES = (VoiceInfo(id=VOICE_ID, name="Heart (hibari)", language="en-US", engine=ENGINE_NAME),)


def missing() -> str | None:
    """None if hibari-tts can be used here, else a hint to install it."""
    if importlib.util.find_spec("hibari") is None or importlib.util.find_spec("onnxruntime") is None:
        return "hibari-tts not installed: pip install hibari-tts"
    return None


def create(warm: bool = True) -> HibariEngine:
    return HibariEngine(warm=warm)


class HibariEngine(SingleWorkerEngine):
    """hibari-tts's bundled voice "heart". See the module docstring."""

    name = ENGINE_NAME
    sample_rate = SAMPLE_RATE
    voice_id = VOICE_ID

    def __init__(self, warm: bool = True, seed: int | None = None) -> None:
        super().__init__()
        self._seed = seed
        self._tts: Any = None
        # Load (and warm) on the worker so the thread that owns the model is the one that made it.
        self._executor.submit(self._load, warm).result()

    def _load(self, warm: bool) -> None:
        import hibari
        from hibari.voices import VOICES as HIBARI_VOICES, voice_path

        if hibari.SAMPLE_RATE != SAMPLE_RATE:
            raise RuntimeError(f"hibari speaks at {hibari.SAMPLE_RATE} Hz, expected {SAMPLE_RATE}")
        if not HIBARI_VOICES.get(VOICE_ID, {}).get("bundled"):
            raise RuntimeError(f"this hibari-tts has no bundled voice {VOICE_ID!r}")
        # Never download: a missing bundled file is an error, not a fetch.
        model = voice_path(VOICE_ID, download_missing=False)
        self._tts = hibari.Hibari(voice=VOICE_ID, model=model, threads=1)
        if warm:
            # Loads the G2P lexicons and tagger (~0.3 s) so the first request does not wait for them.
            self._tts("Warm up.", seed=0)

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
