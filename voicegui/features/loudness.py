"""Loudness of a voice's audio (EBU R128 integrated loudness, ITU-R BS.1770-4) and the gain that matches it.

`measure(samples, rate)` gives a `Loudness`: integrated loudness in LUFS (pyloudnorm's K-weighted, gated
measure) and the sample peak in dBFS. `matching_gain_db(loudness, target_lufs)` is the gain that brings a
voice to `target_lufs` (EBU R128's -23 LUFS by default) *limited by its peak*: the gained peak never goes
over `PEAK_CEILING_DBFS`, so matching never clips (a quiet voice with loud peaks stays a little under the
target, and says so through `reaches_target`). `apply_gain` returns a new float32 array.

BS.1770 needs at least one 400 ms gating block: a shorter or silent clip has no integrated loudness
(`lufs` None), and gets no gain. pyloudnorm is imported when first used (it brings scipy).
`decode_whole(body, fmt, headers)` decodes a whole response body with the same decoder as a Speak (to
measure what a server sent before playing it: the blind A/B, the line-up's loudness matching).

Pure functions over numpy arrays; any thread. Qt-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from voicegui.decode.stream_decoder import create_decoder
from voicegui.formats import announced_pcm_format

TARGET_LUFS = -23.0  # EBU R128's programme loudness
PEAK_CEILING_DBFS = -1.0  # headroom kept under full scale when gain is applied
MIN_SECONDS = 0.4  # one BS.1770 gating block
MAX_GAIN_DB = 30.0  # never lift near-silence into noise


@dataclass(frozen=True)
class Loudness:
    """Integrated loudness (None: too short or silent to measure) and sample peak of one clip."""

    lufs: float | None
    peak_dbfs: float

    def describe(self) -> str:
        return "n/a" if self.lufs is None else f"{self.lufs:.1f} LUFS"


def measure(samples: np.ndarray, rate: int) -> Loudness:
    """BS.1770-4 integrated loudness of mono float32 `samples` at `rate` Hz, and their peak."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    peak_dbfs = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    if len(x) < int(MIN_SECONDS * rate) or peak == 0.0:
        return Loudness(None, peak_dbfs)
    import pyloudnorm  # scipy comes with it: loaded only when something is measured

    lufs = float(pyloudnorm.Meter(rate).integrated_loudness(x))
    return Loudness(lufs if math.isfinite(lufs) else None, peak_dbfs)


def matching_gain_db(loudness: Loudness, target_lufs: float = TARGET_LUFS,
                     ceiling_dbfs: float = PEAK_CEILING_DBFS) -> float:
    """Gain (dB) to bring the clip to `target_lufs`, lowered so its peak stays at or under `ceiling_dbfs`."""
    if loudness.lufs is None or not math.isfinite(loudness.peak_dbfs):
        return 0.0
    wanted = min(target_lufs - loudness.lufs, MAX_GAIN_DB)
    return min(wanted, ceiling_dbfs - loudness.peak_dbfs)


def reaches_target(loudness: Loudness, gain_db: float, target_lufs: float = TARGET_LUFS) -> bool:
    """Whether `gain_db` brings the clip to the target (False when the peak limit held it back)."""
    return loudness.lufs is not None and abs(loudness.lufs + gain_db - target_lufs) < 0.05


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """A new float32 array: `samples` times the gain."""
    return (np.asarray(samples, dtype=np.float32) * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def decode_whole(body: bytes, fmt: str, headers: dict[str, str] | None = None, rate: int = 24000) -> np.ndarray:
    """A whole response body as float32 mono at `rate` (resampled if need be); a raw pcm body is read as its
    response's headers announce. Raises decode.errors.DecodeError with a sentence for the user."""
    decoder = create_decoder(fmt, output_rate=rate)
    pcm_rate, channels = announced_pcm_format(headers or {})
    decoder.set_raw_pcm_format(pcm_rate, channels)
    return np.concatenate([decoder.feed(bytes(body)), decoder.flush()]).astype(np.float32)
