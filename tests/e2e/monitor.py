"""Record what the null sink actually played: its monitor source, through `parec`, as float32 mono.

What PortAudio was handed (``--out``, ``keep_played``) is not what was heard: the end of a stream can be lost
between PortAudio and PulseAudio. Recording the monitor measures the sound itself. A reader thread empties
parec's pipe as it goes, so a recording of any length never blocks parec.
"""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np

RATE = 24000


class MonitorRecording:
    """`with MonitorRecording() as rec: ...`; then `rec.samples` (float32, RATE Hz mono)."""

    def __init__(self, settle_s: float = 0.3, tail_s: float = 0.4) -> None:
        self.settle_s = settle_s  # before the body runs: parec is connected and recording
        self.tail_s = tail_s  # after it: whatever the sink still renders is caught
        self._chunks: list[bytes] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.samples = np.zeros(0, dtype=np.float32)

    def __enter__(self) -> MonitorRecording:
        self._proc = subprocess.Popen(
            ["parec", "-d", "nullsink.monitor", "--latency-msec=10", "--format=s16le", f"--rate={RATE}",
             "--channels=1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        time.sleep(self.settle_s)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while chunk := self._proc.stdout.read1(65536):
            self._chunks.append(chunk)

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._reader is not None
        time.sleep(self.tail_s)
        self._proc.terminate()
        self._proc.wait(10)
        self._reader.join(10)
        data = b"".join(self._chunks)
        data = data[: len(data) // 2 * 2]
        self.samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768


def sound_segments(x: np.ndarray, threshold: float = 0.02, gap_s: float = 0.05) -> list[tuple[int, int]]:
    """(start, end) of each stretch of sound, stretches closer than `gap_s` being one."""
    loud = np.flatnonzero(np.abs(x) > threshold)
    if not len(loud):
        return []
    breaks = np.flatnonzero(np.diff(loud) > gap_s * RATE)
    starts = np.concatenate(([loud[0]], loud[breaks + 1]))
    ends = np.concatenate((loud[breaks], [loud[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
