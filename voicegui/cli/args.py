"""What the command-line entry points share: exit codes, argparse value types (numbers checked with one
clear message) and the playback arguments of speak and lineup.

One module so that the subcommands (main, lineup, serve, bench, desktop_install) depend on it and never on
each other for these.

Threads: pure functions, called by argparse on the main thread.
"""

from __future__ import annotations

import argparse

from voicegui.limits import MAX_PREBUFFER_MS, MAX_SPEED, MIN_SPEED

# The process exit codes of every subcommand: 2 is argparse's own for a usage error.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _number(value: str, kind: type[float] | type[int], what: str, positive: bool) -> float | int:
    try:
        x = kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from exc
    if not x >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError("must be >= 0")
    if positive and x == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return x


def nonneg_float(value: str) -> float:
    return float(_number(value, float, "a number", positive=False))


def positive_float(value: str) -> float:
    return float(_number(value, float, "a number", positive=True))


def nonneg_int(value: str) -> int:
    return int(_number(value, int, "a whole number", positive=False))


def positive_int(value: str) -> int:
    return int(_number(value, int, "a whole number", positive=True))


SPEED_HELP = f"{MIN_SPEED:g} .. {MAX_SPEED:g}"


def speed_problem(speed: float | None) -> str | None:
    """Why --speed is refused (one line for stderr), or None when it is absent or in range."""
    if speed is not None and not MIN_SPEED <= speed <= MAX_SPEED:
        return f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {speed}"
    return None


def prebuffer_ms(value: str) -> float | None:
    """--prebuffer-ms: "auto" (None) or milliseconds, 0..MAX_PREBUFFER_MS."""
    if value == "auto":
        return None
    try:
        ms = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be 'auto' or milliseconds, not {value!r}") from exc
    if not 0 <= ms <= MAX_PREBUFFER_MS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_PREBUFFER_MS} ms")
    return ms


def latency(value: str) -> str | float:
    """--latency: low, high or seconds (stream.output.parse_latency's rules)."""
    # Imported here: stream.output pulls in sounddevice, which `voicegui --help` should not pay for.
    from voicegui.stream.output import parse_latency

    try:
        return parse_latency(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_playback_arguments(p: argparse.ArgumentParser) -> None:
    """Buffer and device knobs shared by speak and lineup."""
    p.add_argument("--chunk-bytes", type=positive_int, default=None,
                   help="hand network bytes on in chunks of N (default: as they arrive)")
    p.add_argument("--prebuffer-ms", type=prebuffer_ms, default=None, metavar="auto|N",
                   help="audio to buffer before playback starts (default auto: from the measured delivery rate)")
    p.add_argument("--max-buffer-s", type=positive_float, default=10.0,
                   help="most audio held in memory; beyond it the network is not read (default 10)")
    p.add_argument("--device", default=None, help="output device index or name (see: voicegui devices)")
    p.add_argument("--latency", type=latency, default="low", help="device latency: low, high or seconds")
    p.add_argument("--blocksize", type=int, default=0, help="device block size in frames (0: automatic)")
    p.add_argument("--volume", type=float, default=1.0, help="playback volume, 0..1 (default 1)")
