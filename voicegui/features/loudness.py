"""Loudness of a voice's audio (EBU R128 integrated loudness, ITU-R BS.1770-4) and the gain that matches it.

`measure(samples, rate)` gives a `Loudness`: integrated loudness in LUFS (FFmpeg's `ebur128` filter, through
PyAV: the K-weighted, gated EBU R128 measure; no extra dependency, where pyloudnorm would bring scipy, ~30 MB
more in the one-folder app) and the sample peak in dBFS. `matching_gain_db(loudness, target_lufs)` is the gain
that brings a voice to `target_lufs` (EBU R128's -23 LUFS by default) *limited by its peak*: the gained peak never goes
over `PEAK_CEILING_DBFS`, so matching never clips (a quiet voice with loud peaks stays a little under the
target, and says so through `reaches_target`). `apply_gain` returns a new float32 array.

BS.1770 needs at least one 400 ms gating block: a shorter or silent clip has no integrated loudness
(`lufs` None), and gets no gain.
`decode_whole(body, fmt, headers)` decodes a whole response body with the same decoder as a Speak (to
measure what a server sent before playing it: the blind A/B, the line-up's loudness matching).

Pure functions over numpy arrays; any thread. Qt-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

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
    lufs = _integrated_lufs(x.astype(np.float32), rate)
    return Loudness(lufs, peak_dbfs)


# ebur128 reports -70 LUFS (its absolute gate) when nothing passes the gates: no loudness to match.
_NOTHING_MEASURED_LUFS = -70.0


def _integrated_lufs(x: np.ndarray, rate: int) -> float | None:
    """Integrated loudness by FFmpeg's ebur128 filter (its running value after the last sample), or None."""
    import av  # PyAV's FFmpeg: already loaded wherever audio is decoded

    graph = av.filter.Graph()
    src = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))
    meter = graph.add("ebur128", "metadata=1")
    sink = graph.add("abuffersink")
    src.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    last: float | None = None

    def drain() -> None:
        nonlocal last
        while True:
            try:
                frame = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            value = frame.metadata.get("lavfi.r128.I")
            if value is not None:
                last = float(value)

    block = max(1, rate // 10)
    for start in range(0, len(x), block):
        chunk = np.ascontiguousarray(x[start:start + block]).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    if last is None or not math.isfinite(last) or last <= _NOTHING_MEASURED_LUFS:
        return None
    return last


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
    # Imported here: the window imports this module before it is shown, and PyAV is not needed until a clip is.
    from voicegui.decode.stream_decoder import create_decoder

    decoder = create_decoder(fmt, output_rate=rate)
    pcm_rate, channels = announced_pcm_format(headers or {})
    decoder.set_raw_pcm_format(pcm_rate, channels)
    return np.concatenate([decoder.feed(bytes(body)), decoder.flush()]).astype(np.float32)
