"""Helpers for the gapless (encoder delay) tests of mp3, shared by tests/decode/ and tests/server/: the Debian
ffmpeg and lame binaries (tests skip without them: `make conformance` installs both), FFmpeg's decode of a
whole stream through a pipe, and where one rendering of a clip starts in another (cross-correlation)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

T = TypeVar("T")

# Marked `encoders`: `make conformance` (which installs the binaries) runs them with VOICEGUI_CONFORMANCE=1, and
# there a missing binary fails instead of skipping; elsewhere (the plain `make test`) they skip, saying so.
_REQUIRED = os.environ.get("VOICEGUI_CONFORMANCE") == "1"


def _needs(binary: str, package: str) -> Callable[[T], T]:
    skip = pytest.mark.skipif(shutil.which(binary) is None and not _REQUIRED,
                              reason=f"the {binary} binary is not installed (Debian {package}: make conformance)")

    def mark(test: T) -> T:
        return pytest.mark.encoders(skip(test))

    return mark


needs_ffmpeg = _needs("ffmpeg", "ffmpeg")
needs_lame = _needs("lame", "lame")


def ffmpeg_decode(data: bytes) -> np.ndarray:
    """`ffmpeg -i - -f s16le -` on `data`: FFmpeg's demuxer reading a pipe, as a player reads a stream."""
    done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", "-", "-ac", "1", "-f", "s16le", "-"],
                          input=data, capture_output=True, timeout=60, check=True)
    return np.frombuffer(done.stdout, "<i2").astype(np.float32) / 32768.0


def lame_encode(wav: Path, out: Path, *args: str) -> bytes:
    """The lame binary's file (with its own LAME tag: it can seek back in a file) for the wav at `wav`."""
    subprocess.run(["lame", "--quiet", *args, str(wav), str(out)], timeout=60, check=True)
    return out.read_bytes()


def lag(reference: np.ndarray, got: np.ndarray, max_lag: int = 3000) -> int:
    """How many samples later `reference`'s sound starts in `got` (negative: earlier), by cross-correlating
    the first 0.5 s; within +-max_lag."""
    n = 12000
    ref = np.asarray(reference[:n], np.float64)
    seg = np.asarray(got[: n + max_lag], np.float64)
    size = 1 << int(np.ceil(np.log2(len(ref) + len(seg) + max_lag)))
    corr = np.fft.irfft(np.fft.rfft(seg, size) * np.conj(np.fft.rfft(ref, size)), size)
    around = np.concatenate([corr[size - max_lag :], corr[: max_lag + 1]])  # lags -max_lag .. +max_lag
    return int(np.argmax(around)) - max_lag


def id3_len(data: bytes) -> int:
    """Length of the ID3v2 tag at the start of `data` (0 if there is none)."""
    if data[:3] != b"ID3":
        return 0
    return 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9])
