"""Benchmark hook for issue 19: time from launching `voicegui speak TEXT` to the running window's first sound.

A real window process (`python -m voicegui`, offscreen, the built-in offline voices, the test's null sink)
is started; each round launches `voicegui speak`, which hands the text to the window and exits, and reads
the window's log line "handed-over Speak finished: first sound at monotonic T, device latency L s". The launch time
and T are both CLOCK_MONOTONIC (one clock for every process on the machine), so launch -> first sound handed
to the device (+ its reported latency = first heard) is measured across the two processes. Each round also
prints the user+sys CPU the `voicegui speak` process used (getrusage of the waited-for child): unlike the
times, that figure holds on a busy machine.

Run quietly (the lead's machine, nothing else running):
    python -m tests.e2e.handoff_bench --rounds 20
It needs the PulseAudio null sink of tests/null_sink.py (started here when none is reachable).
`WindowProcess` is also what tests/e2e/test_second_instance.py drives.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY = "built-in voices ready"
FIRST_SOUND = re.compile(r"handed-over Speak finished: first sound at monotonic ([0-9.]+), device latency ([0-9.]+) s"
                         r"(?:; received at monotonic ([0-9.]+); (.*))?")


class WindowProcess:
    """`python -m voicegui` (the window, with the options `args`, e.g. -vv) with its own config, cache and
    runtime dirs under `root`; its log lines are collected as they come. Offscreen unless `env` says otherwise
    (QT_QPA_PLATFORM=xcb and DISPLAY for a real X server); `env` is also what its commands run with."""

    def __init__(self, root: Path, runtime: Path, env: Mapping[str, str] | None = None,
                 args: Sequence[str] = ()) -> None:
        self.root, self.runtime = root, runtime
        self.env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VOICEGUI_CONFIG_DIR=str(root / "config"),
                        VOICEGUI_CACHE_DIR=str(root / "cache"), VOICEGUI_LOG_DIR=str(root / "log"),
                        VOICEGUI_RUNTIME_DIR=str(runtime),
                        PYTHON_KEYRING_BACKEND="tests.ui.memory_keyring.MemoryKeyring")
        self.env.update(env or {})
        self.env.pop("OPENAI_API_KEY", None)
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "voicegui", *args], cwd=REPO, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str | re.Pattern[str], timeout_s: float = 60, after: int = 0) -> re.Match[str]:
        """The first log line (from index `after`) matching `pattern`; AssertionError with the log if none."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                m = rx.search(line)
                if m:
                    return m
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {rx.pattern!r}; the window said:\n" + "\n".join(self.lines[-40:]))

    def command(self, *argv: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
        """Run another `voicegui ...` against this window (same dirs)."""
        pre = ["-X", "importtime"] if importtime else []
        return subprocess.run([sys.executable, *pre, "-m", "voicegui", *argv], cwd=REPO, env=self.env,
                              capture_output=True, text=True, timeout=120)

    def stop(self) -> int:
        """Close it as Ctrl+C does (the device released, the socket removed); its exit code (130 then)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        return self.proc.returncode

    def kill(self) -> None:
        """A crash: no clean-up runs."""
        self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)


def client_cpu_ms(before: resource.struct_rusage, after: resource.struct_rusage) -> float:
    """User+sys CPU in ms of the children waited for between two getrusage(RUSAGE_CHILDREN) readings (the
    window is not among them: it has not ended)."""
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def launch_to_first_sound(window: WindowProcess, text: str, stages: list[str] | None = None) -> tuple[float, float]:
    """(launch -> first sound handed to the device, launch -> first heard) in ms, for one `voicegui speak`;
    `stages` gets the breakdown: the command's CPU, launch -> the window read the request (the command's
    start, connect and send), then the window's own stages after that (its log line)."""
    seen = len(window.lines)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.monotonic()
    res = window.command("speak", text)
    cpu_ms = client_cpu_ms(before, resource.getrusage(resource.RUSAGE_CHILDREN))
    if res.returncode != 0:
        raise AssertionError(f"voicegui speak failed: {res.stderr}")
    m = window.wait_for(FIRST_SOUND, 60, after=seen)
    first_sound, latency = float(m.group(1)), float(m.group(2))
    if stages is not None and m.group(3):
        stages[:] = [f"command CPU {cpu_ms:.1f}ms, received=+{(float(m.group(3)) - launched) * 1000:.1f}ms after "
                     "launch", m.group(4)]
    return (first_sound - launched) * 1000, (first_sound + latency - launched) * 1000


def run(rounds: int, text: str = "Speak from anywhere.") -> list[tuple[float, float]]:
    """Start a window, speak once to warm it up, then measure `rounds` launches; printed as it goes."""
    with tempfile.TemporaryDirectory(prefix="vg-bench-") as tmp:
        window = WindowProcess(Path(tmp), Path(tmp) / "rt")
        try:
            window.wait_for(READY, 120)
            launch_to_first_sound(window, text)  # the voice's first Speak loads what it needs
            results = []
            for i in range(rounds):
                stages: list[str] = []
                sound_ms, heard_ms = launch_to_first_sound(window, text, stages)
                results.append((sound_ms, heard_ms))
                print(f"round {i + 1}: launch -> first sound {sound_ms:.1f} ms, first heard {heard_ms:.1f} ms "
                      f"({'; window: '.join(stages)})")
            if results:
                print(f"median over {len(results)}: first sound {statistics.median(r[0] for r in results):.1f} ms, "
                      f"first heard {statistics.median(r[1] for r in results):.1f} ms")
            return results
        finally:
            window.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    from tests.null_sink import start_null_sink, stop_null_sink

    start_null_sink()
    try:
        run(args.rounds)
    finally:
        stop_null_sink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
