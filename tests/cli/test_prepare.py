"""`python -m voicegui.cli.prepare` (run by `make install`): the default voice's caches are built before the first
launch, kept where the window looks for them, not built again, and a cache that cannot be written is one line,
exit 0, no traceback (the window then builds them itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.server.engines import hibari

pytestmark = pytest.mark.skipif(hibari.missing() is not None, reason="hibari-tts is not installed")


def prepare(cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VOICEGUI_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "voicegui.cli.prepare"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_builds_the_caches_once_where_the_engine_reads_them(tmp_path):
    first = prepare(tmp_path)
    assert first.returncode == 0 and "caches are ready" in first.stderr, first.stderr
    model = list((tmp_path / "engines").glob("hibari-optimized-*.onnx"))
    tables = list((tmp_path / "engines").glob("hibari-g2p-*"))
    assert len(model) == 1 and len(tables) == 1, sorted((tmp_path / "engines").iterdir())
    stamps = (model[0].stat().st_mtime_ns, tables[0].stat().st_mtime_ns)
    again = prepare(tmp_path)
    assert again.returncode == 0 and "caches are ready" in again.stderr, again.stderr
    assert (model[0].stat().st_mtime_ns, tables[0].stat().st_mtime_ns) == stamps, "the caches were built again"


def test_a_cache_that_cannot_be_written_is_one_line_and_exit_0(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    res = prepare(blocker / "cache")
    assert res.returncode == 0, res.stderr
    assert "could not keep the built-in voice's caches" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and "caches are ready" not in res.stderr, res.stderr
