"""ReplayEngine: "speaks" any text by streaming a fixed audio file, for tests and benchmarks.

The file (anything PyAV can read) is decoded once, at construction, to 24 kHz mono float32 and kept in
memory; every request then streams the same samples in 20 ms blocks, whatever the text, voice or speed.
That makes the server's output deterministic, so a client's decoded audio can be compared to the source.

Threads: construction decodes on the caller's thread (do it before starting the server); `synthesize()` runs
on the server's asyncio loop and only slices a numpy array, yielding to the loop between blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path

import av
import numpy as np

from voicegui.openai_models import SPEECH_MODELS, SPEECH_VOICES  # it imitates OpenAI's /audio/speech
from voicegui.server.engines.base import VoiceInfo

SAMPLE_RATE = 24000
BLOCK_SAMPLES = 480  # 20 ms at 24 kHz


def decode_file(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a whole audio file to mono float32 at `sample_rate` (PyAV resamples and downmixes)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    parts: list[np.ndarray] = []
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        raise ValueError(f"{path} decoded to no audio")
    return np.concatenate(parts).astype(np.float32, copy=False)


class ReplayEngine:
    """Streams one audio file for every request. See the module docstring."""

    name = "replay"
    sample_rate = SAMPLE_RATE

    def __init__(self, path: str | Path, models: Iterable[str] = SPEECH_MODELS,
                 voices: Iterable[str] = SPEECH_VOICES, block_samples: int = BLOCK_SAMPLES) -> None:
        self.path = Path(path)
        self._models = list(models)
        self._voices = list(voices)
        if block_samples <= 0:
            raise ValueError("block_samples must be positive")
        self.block_samples = block_samples
        self.samples = decode_file(self.path, self.sample_rate)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def models(self) -> list[str]:
        return list(self._models)

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(id=v, name=v.capitalize(), language="en", engine=self.name) for v in self._voices]

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncGenerator[np.ndarray, None]:
        """Yield the file's samples in 20 ms blocks; text, voice and speed are ignored."""
        for start in range(0, len(self.samples), self.block_samples):
            yield self.samples[start:start + self.block_samples]
            # Let other requests and the writer run between blocks, as a real engine would.
            await asyncio.sleep(0)
