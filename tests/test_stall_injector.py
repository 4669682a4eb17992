"""The stall injector (tests/stall_injector.py) really stops its command's whole process tree: a grandchild that
stamps the clock every 2 ms shows a hole at least as long as each stall, the command's exit code comes back, and
no freezer group is left behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stall_injector import FREEZER_ROOT, freezer_group_error

_no_freezer = freezer_group_error()
pytestmark = pytest.mark.skipif(_no_freezer is not None, reason=f"{_no_freezer}")

STALL_MS = 120

# The command runs the stamper as its child (the injector's grandchild): a stall must stop descendants too, as
# it stops the pulseaudio that tests/conftest.py starts. The stamper prints monotonic times, 2 ms apart.
_STAMPER = "import time\nend = time.monotonic() + 2.0\nwhile time.monotonic() < end:\n    print(time.monotonic())\n" \
           "    time.sleep(0.002)\n"
_COMMAND = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {_STAMPER!r}], check=True)\nsys.exit(7)\n"


def group_left(stderr: str) -> bool:
    """Whether the freezer group the injector named on stderr still exists (other runs' groups may come and
    go meanwhile: only its own counts)."""
    named = re.search(r"freezer group (\S+)", stderr)
    assert named is not None and named.group(1).startswith(f"{FREEZER_ROOT}/"), stderr
    return Path(named.group(1)).exists()


def test_a_frozen_command_stands_still_for_each_stall_and_its_exit_code_comes_back():
    res = subprocess.run(
        [sys.executable, "-m", "tests.stall_injector", "--seed", "5", "--min-gap-s", "0.2", "--max-gap-s", "0.3",
         "--min-stall-ms", str(STALL_MS), "--max-stall-ms", str(STALL_MS), "--", sys.executable, "-c", _COMMAND],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 7, res.stderr
    summary = re.search(r"(\d+) stalls, .* the longest (\d+) ms", res.stderr)
    assert summary is not None, res.stderr
    stalls = int(summary.group(1))
    assert stalls >= 2, res.stderr  # 2 s of stamping, a stall every 0.2-0.3 s
    stamps = [float(line) for line in res.stdout.split()]
    holes = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    # Every stall stopped the stamper for the whole stall; a stall of the machine itself could only add holes.
    assert sum(hole >= STALL_MS / 1000 for hole in holes) >= stalls, (stalls, sorted(holes)[-stalls:])
    assert not group_left(res.stderr), "the freezer group was not removed"


def test_a_command_that_cannot_start_is_named_and_leaves_no_group():
    res = subprocess.run([sys.executable, "-m", "tests.stall_injector", "--", "/nonexistent/command"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 127
    assert "cannot run '/nonexistent/command'" in res.stderr
    assert not group_left(res.stderr)
