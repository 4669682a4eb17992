"""What the soak tests watch for leaks in this process: OS threads, open descriptors, resident memory (Linux /proc)."""

from __future__ import annotations

import os
from pathlib import Path


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
