"""onnxruntime, as the built-in engines import it, writes no telemetry files (a device id, an event database)
into the user's home."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("onnxruntime")

CODE = """
import voicegui.server.engines
import onnxruntime
onnxruntime.SessionOptions()
"""


def test_importing_onnxruntime_through_the_engines_writes_nothing_in_home(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / ".cache"))
    done = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")] == []
