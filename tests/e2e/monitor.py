"""Record what the null sink actually played: its monitor source, through `parec`, as float32 mono.

What PortAudio was handed (``--out``, ``keep_played``) is not what was heard: the end of a stream can be lost
between PortAudio and PulseAudio. Recording the monitor measures the sound itself. A reader thread empties
parec's pipe as it goes, so a recording of any length never blocks parec.

These machines are virtual and shared: the hypervisor now and then holds the whole machine (its "steal" time),
PulseAudio included, for tens of milliseconds, and the sink then plays gaps no player could have prevented. Each
recording therefore runs a watchdog process beside it that measures the longest time the machine did not run it
(`stall_s`), and `judged` lets a take whose check failed be taken again only when such a stall happened during
it: a check that fails on a machine that ran throughout fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

RATE = 24000
STALL_S = 0.020  # a machine held this long can starve a low-latency stream (PortAudio's and parec's)
TAKES = 4

# Sleeps 2 ms at a time and, when terminated, prints the longest it overslept: how long the machine (not just
# this process: it wakes at once from a sleep on any busy core) did not run it. Its own process, so the test's
# GIL does not count.
_WATCHDOG = """
import signal, sys, time
worst = 0.0
def report(*_):
    sys.stdout.write(f"{worst:.6f}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, report)
last = time.monotonic()
while True:
    time.sleep(0.002)
    now = time.monotonic()
    worst = max(worst, now - last - 0.002)
    last = now
"""


class MonitorRecording:
    """`with MonitorRecording() as rec: ...`; then `rec.samples` (float32, RATE Hz mono)."""

    def __init__(self, settle_s: float = 0.3, tail_s: float = 0.4) -> None:
        self.settle_s = settle_s  # before the body runs: parec is connected and recording
        self.tail_s = tail_s  # after it: whatever the sink still renders is caught
        self._chunks: list[bytes] = []
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self.samples = np.zeros(0, dtype=np.float32)
        self._watchdog: subprocess.Popen | None = None
        self.stall_s = 0.0  # the longest the machine stood still during the recording (see the module docstring)

    def __enter__(self) -> MonitorRecording:
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdout=subprocess.PIPE, text=True)
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
        if self._watchdog is not None:
            self._watchdog.terminate()
            out, _ = self._watchdog.communicate(timeout=10)
            self.stall_s = float(out) if out.strip() else float("inf")  # no report: it never ran to the end
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


def judged(rec: MonitorRecording, check: Callable[[], None], take: int) -> bool:
    """Run `check` (assertions on `rec`) for take number `take` (from 0) of at most TAKES: True when it passed,
    False when it failed during a machine stall and another take is due. A failure without a stall fails the
    test; a stall in every one of the TAKES takes skips it, saying so (the machine never ran long enough)."""
    try:
        check()
    except AssertionError as failure:
        if rec.stall_s < STALL_S:
            raise
        if take + 1 < TAKES:
            return False
        pytest.skip(f"the machine stood still for {STALL_S * 1000:.0f} ms or more in each of {TAKES} takes "
                    f"(the last: {rec.stall_s * 1000:.0f} ms); last failure: {failure}")
    return True
