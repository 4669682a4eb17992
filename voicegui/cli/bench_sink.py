"""What the sink played, for `voicegui bench`: a PulseAudio monitor source recorded with `parec`, each sample
given the `time.monotonic()` at which the sink played it, so "first sound" can be measured at the sink and not
only where PortAudio was handed the samples.

How the times are made: a reader thread reads whatever parec has written to its pipe (`os.read`, so a backlog
comes out whole) and stamps the block with `time.monotonic()` at the read. The block's last sample was
captured by the monitor at or before that moment, and the samples before it one sample period apart, so
sample i of an n-sample block is stamped `read_time - (n - 1 - i) / rate`. What parec itself still holds
cannot be read from outside, so a stamp is never early and late by at most one of parec's blocks
(`--latency-msec=10`: ~10 ms) plus the reader thread's scheduling delay. The monitor sees a sample when the
sink renders it, which for PulseAudio's null sink is when it plays.

Only the last `keep_s` seconds of the recording are kept (int16, 48 KB per second at 24 kHz).

Threads: `start()`, `first_sound_after()` and `stop()` run on the caller's thread; one daemon thread reads
parec's pipe and appends stamped blocks; `_lock` guards the block list between the two.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections import deque

import numpy as np

from voicegui.limits import AUDIBLE_LEVEL

log = logging.getLogger(__name__)

DEFAULT_MONITOR = "nullsink.monitor"  # tests/null_sink.py's sink, which `make bench` plays into
RATE = 24000
BLOCK_MS = 10
THRESHOLD = AUDIBLE_LEVEL  # |sample| above which the sink is sounding: the output's "first sound" (limits.py)
START_TIMEOUT_S = 5.0


class SinkRecorderError(RuntimeError):
    """The recorder could not start; the message says why and what to do."""


class StampedBlocks:
    """Recorded int16 blocks, each with the monotonic time of its last sample; the last `keep_s` seconds."""

    def __init__(self, rate: int = RATE, keep_s: float = 120.0) -> None:
        self.rate = rate
        self._keep = int(keep_s * rate)
        self._blocks: deque[tuple[float, np.ndarray]] = deque()
        self._held = 0
        self._lock = threading.Lock()

    def add(self, end_time: float, samples: np.ndarray) -> None:
        """A block whose last sample was captured at `end_time`."""
        if not len(samples):
            return
        with self._lock:
            self._blocks.append((end_time, samples))
            self._held += len(samples)
            while self._held - len(self._blocks[0][1]) >= self._keep:
                self._held -= len(self._blocks.popleft()[1])

    def first_above(self, t0: float, threshold: float) -> float | None:
        """The time of the first sample stamped after `t0` whose magnitude is above `threshold` (full scale
        1.0), or None if there is none yet."""
        limit = threshold * 32768
        with self._lock:
            blocks = list(self._blocks)
        for end_time, samples in blocks:
            if end_time <= t0:
                continue
            times = end_time - np.arange(len(samples) - 1, -1, -1) / self.rate
            loud = np.flatnonzero((np.abs(samples.astype(np.int32)) > limit) & (times > t0))
            if len(loud):
                return float(times[loud[0]])
        return None


def monitor_sources() -> list[str]:
    """The names of PulseAudio's sources (`pactl list short sources`); SinkRecorderError if pactl is missing
    or cannot reach the sound server."""
    if shutil.which("pactl") is None:
        raise SinkRecorderError("pactl is not installed (Debian: pulseaudio-utils), so no monitor source can be "
                                "found")
    try:
        res = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise SinkRecorderError("`pactl list short sources` did not answer within 10 s") from None
    if res.returncode != 0:
        reason = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise SinkRecorderError(f"`pactl list short sources` failed ({reason}): no PulseAudio server reachable")
    return [line.split("\t")[1] for line in res.stdout.splitlines() if line.count("\t") >= 1]


class SinkRecorder:
    """`parec -d SOURCE` on a reader thread; `first_sound_after(t0)` is when the sink first sounded after t0.

    Use as a context manager, or `start()` ... `stop()`."""

    def __init__(self, source: str = DEFAULT_MONITOR, rate: int = RATE, threshold: float = THRESHOLD,
                 keep_s: float = 120.0) -> None:
        self.source = source
        self.rate = rate
        self.threshold = threshold
        self.blocks = StampedBlocks(rate, keep_s)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._first_read = threading.Event()  # set at the first read, data or end of pipe
        self._got_data = False

    def start(self) -> None:
        """Start parec and wait until its first block is in; SinkRecorderError (with parec's reason) if it
        is not installed, exits or sends nothing within START_TIMEOUT_S."""
        if shutil.which("parec") is None:
            raise SinkRecorderError("parec is not installed (Debian: pulseaudio-utils)")
        self._proc = subprocess.Popen(
            ["parec", "-d", self.source, f"--latency-msec={BLOCK_MS}", "--format=s16le", f"--rate={self.rate}",
             "--channels=1", "--raw"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, name="bench-sink-parec", daemon=True)
        self._reader.start()
        if not self._first_read.wait(START_TIMEOUT_S):
            self.stop()
            raise SinkRecorderError(f"parec sent nothing from {self.source!r} within {START_TIMEOUT_S:.0f} s")
        if not self._got_data:  # the pipe ended before any sample: parec has exited
            self._proc.wait(5)
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            err = " ".join(err.split())  # parec's reason, on one line
            self.stop()
            raise SinkRecorderError(f"parec could not record {self.source!r}: {err or 'it exited'}")

    def _read(self) -> None:
        # The reader thread: empties the pipe as fast as parec fills it, so a stamp is taken when the bytes
        # are there, not when someone gets round to them.
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        odd = b""
        while True:
            data = os.read(fd, 1 << 16)
            now = time.monotonic()
            if not data:
                self._first_read.set()
                return
            self._got_data = True
            self._first_read.set()
            data = odd + data
            odd = data[len(data) // 2 * 2:]
            self.blocks.add(now, np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2"))

    @property
    def reader_id(self) -> int | None:
        """The reader thread's native id (for per-thread CPU accounting), once started."""
        return self._reader.native_id if self._reader is not None else None

    def first_sound_after(self, t0: float) -> float | None:
        """The monotonic time of the first sample above the threshold the sink played after `t0`."""
        return self.blocks.first_above(t0, self.threshold)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)  # parec has gone, so its pipe ends and the reader returns
        if self._proc is not None:
            for pipe in (self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> SinkRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
