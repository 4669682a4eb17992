"""A deterministic speech-like test clip (no model, no download) for benchmarks, `serve` and tests.

Threads: pure functions, no state.

Voiced "syllables" (a harmonic series on a gliding pitch, shaped by a syllable envelope) separated by short
pauses: it has speech's spectrum, onsets and silences, so codecs and the prebuffer behave as they do on speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicegui.wavfile import write_wav


def speech_like(seconds: float = 4.0, sample_rate: int = 24000, seed: int = 7) -> np.ndarray:
    """int16 mono samples; starts with sound (no leading silence) so first-sound times are comparable."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    pos = 0
    while pos < n:
        syl = int(rng.uniform(0.12, 0.3) * sample_rate)
        end = min(n, pos + syl)
        tt = t[pos:end] - t[pos]
        f0 = rng.uniform(100, 190) * (1 + 0.15 * tt / max(tt[-1], 1e-3) * rng.choice([-1, 1]))
        phase = 2 * np.pi * np.cumsum(f0) / sample_rate
        voiced = sum((0.5 / k) * np.sin(k * phase) for k in range(1, 12))
        env = np.sin(np.pi * np.linspace(0, 1, end - pos)) ** 0.6
        out[pos:end] = voiced * env
        pos = end + int(rng.choice([0.0, 0.0, 0.05, 0.15]) * sample_rate)
    out[0] = 0.3  # a non-silent first sample: the clip's start is its first sound
    out = out / np.max(np.abs(out)) * 0.6
    return np.round(out * 32767).astype(np.int16)


def write_clip(path: Path, seconds: float = 4.0, sample_rate: int = 24000) -> Path:
    return write_wav(path, speech_like(seconds, sample_rate), sample_rate)
