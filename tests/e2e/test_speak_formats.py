"""`voicegui speak` end to end: every format, several chunk sizes and throughputs, all of the clip reaches
the device. pcm/wav/flac are compared sample-exactly with the original at the device boundary (--out holds
exactly what the callback handed to PortAudio); mp3/aac/opus by correlation after alignment."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.conftest import read_wav, speak_json
from voicegui.server.shaping import Shaping

LOSSLESS = ("pcm", "wav", "flac")
LOSSY = ("mp3", "aac", "opus")
CASES = [
    # (chunk bytes, throughput x real time)
    (None, None),
    (1, 4.0),
    (4096, 1.5),
]


def best_alignment(played: np.ndarray, ref: np.ndarray, max_lag: int = 4000) -> tuple[float, int]:
    a = played.astype(np.float64)
    b = ref.astype(np.float64)
    best = (-1.0, 0)
    for lag in range(0, max_lag, 1):
        seg = a[lag : lag + len(b)]
        if len(seg) < len(b) * 0.95:
            break
        n = min(len(seg), len(b))
        x, y = seg[:n], b[:n]
        denom = np.linalg.norm(x) * np.linalg.norm(y)
        if denom:
            c = float(np.dot(x, y) / denom)
            if c > best[0]:
                best = (c, lag)
    return best


@pytest.mark.parametrize("chunk,throughput", CASES)
@pytest.mark.parametrize("fmt", LOSSLESS + LOSSY)
def test_every_format_plays_the_whole_clip(fmt, chunk, throughput, shaped, clip, tmp_path):
    shaped.shaping = Shaping(throughput_x=throughput, write_bytes=1024)
    out = tmp_path / "played.wav"
    extra = ["--format", fmt, "--out", str(out)]
    if chunk:
        extra += ["--chunk-bytes", str(chunk)]
    res, metrics = speak_json(shaped, *extra)
    assert res.returncode == 0, res.stderr
    assert metrics["completed"] and metrics["error"] is None
    assert metrics["detected_format"] == fmt
    assert metrics["ttfa_ms"] is not None and metrics["bytes_received"] > 0
    played = read_wav(out)
    original = clip[1]
    if fmt in LOSSLESS:
        np.testing.assert_array_equal(played, original)
    else:
        corr, lag = best_alignment(played, original)
        assert corr >= 0.99, f"{fmt}: correlation {corr:.4f} at lag {lag}"
        # all of it: nothing missing at the end once aligned
        assert len(played) - lag >= len(original) - 1200, (len(played), lag, len(original))
