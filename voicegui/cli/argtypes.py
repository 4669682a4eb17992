"""argparse value types shared by the command-line entry points: numbers checked with one clear message.

Threads: pure functions, called by argparse on the main thread.
"""

from __future__ import annotations

import argparse


def nonneg_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not x >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError("must be >= 0")
    return x


def positive_float(value: str) -> float:
    x = nonneg_float(value)
    if x == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return x


def nonneg_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def positive_int(value: str) -> int:
    n = nonneg_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return n
