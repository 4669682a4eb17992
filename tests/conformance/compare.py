"""The reference side of every conformance case: a whole-file FFmpeg decode (PyAV's container path, not
voicegui's streaming decoders) of the exact bytes voicegui was given, and the comparison with what voicegui
handed to the device (`voicegui speak --out`).

voicegui plays everything at the device's rate (24 kHz on the test sink) and resamples what comes at another
rate; the reference is resampled the same way by FFmpeg's swresample. A case passes when the played length
is the reference's within one codec frame (so the speed is right and nothing is missing), and the played
audio, aligned within a few milliseconds, correlates >= 0.98 with the reference; lossless formats at the
device rate must moreover match sample for sample (1 LSB of rounding) with no shift.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

MIN_CORRELATION = 0.98
LOSSLESS = frozenset({"pcm", "wav", "flac"})
# One codec frame in samples: how far the played length may be from the reference's (opus: 20 ms at 48 kHz).
FRAME = {"pcm": 0, "wav": 0, "flac": 0, "mp3": 1152, "aac": 1024, "opus": 960}
# Two resamplers (voicegui's and the reference's) may each hold back or pad a filter's length.
RESAMPLER_SLACK = 64
# The largest shift tried when aligning: a few ms plus the priming a decoder may or may not trim (AAC: 1024).
MAX_LAG = 2048 + 256


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float64 mono in [-1, 1]
    rate: int
    source_rate: int = 0  # the file's own rate, when `samples` were resampled from it (else 0)


def reference_decode(body: bytes, fmt: str, out_rate: int, pcm_rate: int | None = None) -> Audio:
    """Decode `body` whole with FFmpeg (PyAV), channels mixed to mono as voicegui plays them, resampled by
    swresample to `out_rate` (the device rate voicegui played at) when the file has another rate."""
    # Planar doubles at the output rate with the channels kept: voicegui plays the mean of the channels, and
    # swresample's own stereo->mono matrix (-3 dB per channel) is another mix.
    resamplers: list[av.AudioResampler] = []
    chunks: list[np.ndarray] = []

    def add(frame: av.AudioFrame | None) -> None:
        if frame is not None and not resamplers:
            resamplers.append(av.AudioResampler(format="dblp", layout=frame.layout.name, rate=out_rate))
        for out in resamplers[0].resample(frame) if resamplers else ():
            chunks.append(out.to_ndarray().mean(axis=0))

    if fmt == "pcm":
        if pcm_rate is None:
            raise ValueError("raw pcm needs its rate")
        data = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate = rate = pcm_rate
        add(frame)
    else:
        with av.open(io.BytesIO(body), mode="r") as container:
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate)
            for decoded in container.decode(stream):
                add(decoded)
    add(None)
    samples = np.concatenate(chunks) if chunks else np.zeros(0)
    return Audio(samples, out_rate, 0 if rate == out_rate else rate)


def concat(parts: list[Audio]) -> Audio:
    """Back-to-back files: the concatenation of each file's own decode (all at one rate)."""
    rates = {p.rate for p in parts}
    assert len(rates) == 1, f"back-to-back parts at different rates: {rates}"
    return Audio(np.concatenate([p.samples for p in parts]), rates.pop())


def read_played(path: Path) -> Audio:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, (w.getnchannels(), w.getsampwidth())
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        return Audio(data, w.getframerate())


def best_lag(played: np.ndarray, ref: np.ndarray, max_lag: int = MAX_LAG) -> tuple[float, int]:
    """(correlation, lag) maximising the normalised correlation of played[lag:] (lag >= 0) or ref[-lag:]
    with the other, over |lag| <= max_lag; FFT cross-correlation, then the exact value at the best lag."""
    if not len(played) or not len(ref):
        return 0.0, 0
    n = len(played) + len(ref)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(played, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([xc[: max_lag + 1], xc[size - max_lag :]])
    lag = int(lags[int(np.argmax(values))])
    return correlation_at(played, ref, lag), lag


def correlation_at(played: np.ndarray, ref: np.ndarray, lag: int) -> float:
    a, b = (played[lag:], ref) if lag >= 0 else (played, ref[-lag:])
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denom) if denom else 0.0


def check(played: Audio, ref: Audio, fmt: str, label: str) -> str:
    """'' when `played` conforms to `ref`, else one line saying how it does not."""
    if played.rate != ref.rate:
        return f"{label}: played at {played.rate} Hz, the reference was decoded for {ref.rate} Hz"
    if not len(ref.samples):
        return f"{label}: the reference decode is empty"
    corr, lag = best_lag(played.samples, ref.samples)
    slack = FRAME[fmt] + abs(lag) + (RESAMPLER_SLACK if ref.source_rate else 0)
    if abs(len(played.samples) - len(ref.samples)) > slack:
        return (f"{label}: played {len(played.samples)} samples, the reference has {len(ref.samples)} at "
                f"{ref.rate} Hz (more than one {FRAME[fmt]}-sample frame apart after a {lag}-sample shift)")
    if corr < MIN_CORRELATION:
        return f"{label}: correlation {corr:.4f} < {MIN_CORRELATION} at lag {lag}"
    if fmt in LOSSLESS and not ref.source_rate:
        if lag != 0 or len(played.samples) != len(ref.samples):
            return f"{label}: lossless but shifted by {lag} / {len(played.samples) - len(ref.samples)} samples"
        worst = float(np.max(np.abs(played.samples - ref.samples)))
        if worst > 1.5 / 32768:
            return f"{label}: lossless but differs by up to {worst * 32768:.1f} LSB"
    return ""
