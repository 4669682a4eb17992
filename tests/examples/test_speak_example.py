"""examples/speak.py, run as a user would: a script that embeds the Player speaks with the built-in voice on
the test null sink and ends with its summary line; a server that is not there is one clear error line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.audio

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "speak.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_example_speaks_with_the_builtin_voice_and_shows_progress():
    res = run("Hello from the example.")
    assert res.returncode == 0, res.stderr
    assert "played" in res.stdout and "buffered" in res.stdout  # the progress line
    last = res.stdout.splitlines()[-1]  # text mode reads the progress line's carriage returns as line ends
    assert last.startswith("done: first sound after ") and " s played" in last
    assert "Traceback" not in res.stderr


def test_example_says_so_when_the_server_is_not_there():
    res = run("Hello.", "--base-url", "http://127.0.0.1:9/v1")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in res.stderr
