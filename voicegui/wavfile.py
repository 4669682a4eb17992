"""16-bit mono WAV, written in one place: whole files (the history's "played" audio, reports, `speak --out`,
the benchmark clip) and the streaming header the built-in server sends before audio of unknown length.

Float samples become int16 by x*32768, rounded and clipped, which is exact for audio that came from 16-bit;
int16 samples are written as they are.

Pure functions (a base module: imports nothing of voicegui, so the server and the features both use it);
safe on any thread.
"""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np

# The RIFF/data sizes of a stream whose length is not known when the header is sent.
UNKNOWN_SIZE = 0xFFFFFFFF


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Little-endian int16 samples: int16 input as is, float input by x*32768 (rounded, clipped)."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        return samples.astype("<i2", copy=False)
    return np.clip(np.round(samples.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A complete 16-bit mono WAV file of `samples` (float in [-1, 1] or int16)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(to_int16(samples).tobytes())
    return buf.getvalue()


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write `wav_bytes(samples, sample_rate)` to `path` (not atomically: for outputs the user asked for)."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))
    return path


def wav_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte RIFF/WAVE header with unknown (0xFFFFFFFF) sizes, for a stream of unknown length."""
    block_align = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<I", UNKNOWN_SIZE) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align,
                                block_align, bits)
        + b"data" + struct.pack("<I", UNKNOWN_SIZE)
    )
