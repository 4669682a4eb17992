"""Deterministic speech-like test clip for the server tests: 24 kHz mono 16-bit WAV.

A voiced tone (fundamental gliding 110..180 Hz with decaying harmonics, like a vowel) chopped into
syllables of ~150-250 ms with short pauses between them. No randomness, so every run writes identical bytes.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 24000


def speech_like(duration_s: float = 2.0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Return float32 mono samples in [-0.8, 0.8]: harmonics with a syllable envelope."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    # Fundamental glides slowly like intonation; integrate frequency to get a continuous phase.
    f0 = 145.0 + 35.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = np.zeros(n)
    for k in range(1, 13):
        # Formant-ish emphasis around the 3rd..5th harmonic, 1/k roll-off elsewhere.
        gain = (1.0 / k) * (1.6 if 3 <= k <= 5 else 1.0)
        voice += gain * np.sin(k * phase)
    # Syllables: 200 ms on, 60 ms off, with 20 ms raised-cosine edges so there are no clicks.
    period, on = 0.26, 0.20
    pos = np.mod(t, period)
    env = np.where(pos < on, 1.0, 0.0)
    edge = 0.02
    rise = pos < edge
    env[rise] = 0.5 - 0.5 * np.cos(np.pi * pos[rise] / edge)
    fall = (pos >= on - edge) & (pos < on)
    env[fall] = 0.5 + 0.5 * np.cos(np.pi * (pos[fall] - (on - edge)) / edge)
    out = voice * env
    out *= 0.8 / np.max(np.abs(out))
    return out.astype(np.float32)


def write_wav(path: Path, duration_s: float = 2.0, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write the clip as a 16-bit mono WAV at `path` and return the path."""
    samples = speech_like(duration_s, sample_rate)
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path
