"""Deterministic test inputs for the decoder tests: a speech-like 24 kHz mono int16 signal and its
encodings in the six formats a /v1/audio/speech server may send.

Everything here runs on the test's thread; encodings are built once per process (lru_cache) with PyAV,
whole-file, exactly as a server that encodes a finished clip would produce them.
"""

from __future__ import annotations

import functools
import io
import struct
from fractions import Fraction

import av
import numpy as np

RATE = 24000
SECONDS = 2.0

# (pyav container format, codec name) per requested format
_CONTAINERS = {
    "mp3": ("mp3", "libmp3lame"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
    "opus": ("ogg", "libopus"),
    "wav": ("wav", "pcm_s16le"),
}


@functools.cache
def signal() -> np.ndarray:
    """~2 s of voiced 'syllables': a few harmonics of a gliding pitch under a syllable envelope,
    a 150 ms silent gap in the middle, some noise. int16, deterministic."""
    n = int(RATE * SECONDS)
    t = np.arange(n) / RATE
    f0 = 140.0 + 30.0 * np.sin(2 * np.pi * 1.3 * t)  # pitch glide like intonation
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0.0, None) ** 0.5  # ~5 syllables per second
    x = voiced * envelope
    rng = np.random.default_rng(1234)
    x = x + 0.01 * rng.standard_normal(n)
    gap = slice(int(0.9 * RATE), int(1.05 * RATE))
    x[gap] = 0.0  # a true digital silence, as between sentences
    x = x / np.max(np.abs(x)) * 0.7
    return np.round(x * 32767).astype(np.int16)


def pcm_bytes() -> bytes:
    return signal().astype("<i2").tobytes()


@functools.cache
def encoded(fmt: str) -> bytes:
    """The test signal encoded whole in `fmt` ('pcm','wav','mp3','aac','flac','opus')."""
    if fmt == "pcm":
        return pcm_bytes()
    return encode(fmt, signal(), RATE)


def encode(fmt: str, sig: np.ndarray, rate: int, container: str | None = None,
           options: dict[str, str] | None = None, path: str | None = None) -> bytes:
    """int16 mono `sig` at `rate` encoded whole in `fmt` with PyAV (FFmpeg's muxers and encoders; `container`
    overrides the muxer, e.g. 'webm' or 'mp4'; `options` go to the muxer, e.g. {'id3v2_version': '0'}; `path`: write
    through a real file, for muxers that re-read what they wrote, such as mp4 with movflags=faststart)."""
    default_container, codec = _CONTAINERS[fmt]
    buf = io.BytesIO()
    with av.open(path or buf, "w", format=container or default_container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        # pick an input sample format the encoder accepts; s16 where possible
        formats = [f.name for f in stream.codec_context.codec.audio_formats or []]
        sample_fmt = next((f for f in ("s16", "s16p", "fltp", "flt") if f in formats), "s16")
        stream.codec_context.format = sample_fmt
        if fmt == "mp3":
            stream.codec_context.bit_rate = 64000
        if fmt == "aac":
            stream.codec_context.bit_rate = 64000
        if fmt == "opus":
            stream.codec_context.bit_rate = 32000
        frame_len = 1152 if fmt == "mp3" else 1024 if fmt == "aac" else 960 if fmt == "opus" else 4608
        for start in range(0, len(sig), frame_len):
            chunk = sig[start : start + frame_len]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(_convert(frame, sample_fmt)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    if path is not None:
        with open(path, "rb") as f:
            return f.read()
    return buf.getvalue()


def _convert(frame: av.AudioFrame, sample_fmt: str) -> av.AudioFrame:
    if sample_fmt == "s16":
        return frame
    arr = frame.to_ndarray().reshape(1, -1)
    if sample_fmt.startswith("flt"):
        arr = arr.astype(np.float32) / 32768.0
    out = av.AudioFrame.from_ndarray(arr, format=sample_fmt, layout="mono")
    out.sample_rate = frame.sample_rate
    out.pts = frame.pts
    out.time_base = frame.time_base
    return out


def streamed_wav() -> bytes:
    """wav as a streaming server sends it: RIFF and data sizes 0xFFFFFFFF (length unknown up front)."""
    data = pcm_bytes()
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    return header + data


def wav_with_list_chunk() -> bytes:
    """wav with a LIST/INFO chunk between 'fmt ' and 'data' (odd-sized, so it carries a pad byte)."""
    data = pcm_bytes()
    info = b"INFO" + b"ISFT" + struct.pack("<I", 5) + b"test\x00" + b"\x00"  # odd-length subchunk + pad
    fmt_chunk = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
    list_chunk = b"LIST" + struct.pack("<I", len(info)) + info
    if len(info) % 2:
        list_chunk += b"\x00"
    body = b"WAVE" + fmt_chunk + list_chunk + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@functools.cache
def reference_decode(fmt: str) -> tuple[np.ndarray, int]:
    """PyAV container decode of the whole encoded file: float32 mono samples and the rate."""
    if fmt == "pcm":
        return signal().astype(np.float32) / 32768.0, RATE
    return container_decode(encoded(fmt))


def container_decode(data: bytes) -> tuple[np.ndarray, int]:
    """PyAV container decode of one whole file (FFmpeg's demuxer: gapless info applied): float32 mono, rate."""
    chunks = []
    rate = 0
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            arr = frame.to_ndarray()
            if arr.dtype == np.int16:
                arr = arr.astype(np.float32) / 32768.0
            if frame.format.is_planar:
                arr = arr.mean(axis=0)
            else:
                arr = arr.reshape(-1, len(frame.layout.channels)).mean(axis=1)
            chunks.append(arr.astype(np.float32))
    return np.concatenate(chunks), rate
