"""A PulseAudio null sink for the tests and the benchmarks, on a machine with no sound card.

`start_null_sink()` starts a private PulseAudio server with a null sink named "nullsink" (unless one is already
reachable through PULSE_SERVER) and points PULSE_SERVER at it, so every PortAudio stream opened afterwards in
this process (and its children) plays into it. A low-latency recorder on the sink's monitor stays attached
all along: without one, the null sink's 2 s default latency stalls each new stream for ~2 s (measured, see
docs/architecture.md). `stop_null_sink()` tears it all down.

As a command, `python -m tests.null_sink CMD ARGS...` runs CMD with the sink up (`make bench` does this).

Threads: called from the main thread, before anything imports sounddevice (PortAudio enumerates devices
when it initialises).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class NullSinkError(RuntimeError):
    """The null sink could not be started; the message says why."""


_procs: list[subprocess.Popen] = []
_pulse_dir: Path | None = None


def _pulse_reachable(env: dict) -> bool:
    if shutil.which("pactl") is None:
        return False
    res = subprocess.run(["pactl", "info"], env=env, capture_output=True, text=True, timeout=10)
    return res.returncode == 0 and "nullsink" in res.stdout


def start_null_sink(private: bool = False) -> None:
    """Start the sink (and point PULSE_SERVER at it). `private`: start one of this process's own even when
    another is reachable (a parallel test worker must not hear, nor be heard by, the other workers)."""
    global _pulse_dir
    if not private and os.environ.get("PULSE_SERVER") and _pulse_reachable(dict(os.environ)):
        return
    if shutil.which("pulseaudio") is None:
        raise NullSinkError("pulseaudio is not installed: run `make test`, which installs it")
    _pulse_dir = Path(tempfile.mkdtemp(prefix="voicegui-pulse-"))
    (_pulse_dir / "home").mkdir()
    socket = _pulse_dir / "native"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(_pulse_dir), HOME=str(_pulse_dir / "home"))
    _procs.append(subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--disallow-exit",
         f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
         "--load=module-null-sink sink_name=nullsink rate=48000",
         "--load=module-always-sink", f"--log-target=file:{_pulse_dir / 'pulse.log'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))
    os.environ["PULSE_SERVER"] = f"unix:{socket}"
    deadline = time.monotonic() + 20
    while not _pulse_reachable(dict(os.environ)):
        if time.monotonic() > deadline or _procs[0].poll() is not None:
            log = (_pulse_dir / "pulse.log").read_text(errors="replace") if (_pulse_dir / "pulse.log").exists() else ""
            raise NullSinkError(f"PulseAudio null sink did not start:\n{log[-2000:]}")
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "nullsink"], check=True, capture_output=True)
    _procs.append(keep_sink_running())


def keep_sink_running(env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the low-latency recorder on the null sink's monitor (of the server `env`'s PULSE_SERVER names) that
    must stay attached while the sink plays. Without one the sink runs at its 2 s default latency: each new
    stream stalls ~2 s, and so does a stream after each underrun, e.g. after every time the machine stood still
    (measured under tests/stall_injector.py: a stream crawled at a few % of real time). The caller stops it."""
    return subprocess.Popen(
        ["parec", "-d", "nullsink.monitor", "--latency-msec=20", "--format=s16le", "--rate=24000",
         "--channels=1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def stop_null_sink() -> None:
    for proc in reversed(_procs):
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    if _pulse_dir is not None:
        shutil.rmtree(_pulse_dir, ignore_errors=True)



def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.null_sink CMD [ARGS...]", file=sys.stderr)
        return 2
    try:
        start_null_sink()
    except NullSinkError as exc:
        print(f"null sink: {exc}", file=sys.stderr)
        return 1
    try:
        return subprocess.run(argv).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        stop_null_sink()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
