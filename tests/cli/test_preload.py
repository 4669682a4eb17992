"""cli.preload's process settings and quiet imports, in real subprocesses (OpenBLAS reads its variable once, when
numpy loads it, so each check needs a fresh interpreter)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.cli.preload import BLAS_THREADS_VARIABLE, import_quietly

REPO = Path(__file__).resolve().parents[2]
# Threads of a process that imported numpy and did nothing else: the main thread plus OpenBLAS's own.
COUNT_THREADS = "import numpy, os; print(len(os.listdir('/proc/self/task')))"


def run_python(code: str, **env: str) -> str:
    """stdout of `python -c code` run from the checkout, with `env` added to an environment that has no
    OPENBLAS_NUM_THREADS of its own."""
    base = {k: v for k, v in os.environ.items() if k != BLAS_THREADS_VARIABLE}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**base, **env}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no thread of its own on one core")
def test_numpy_starts_no_blas_threads_of_its_own_after_single_blas_thread():
    # Without it, the same import starts one OpenBLAS thread per core (what the setting is there to stop).
    assert int(run_python(COUNT_THREADS)) > 1
    assert run_python("from voicegui.cli.preload import single_blas_thread; single_blas_thread(); "
                      + COUNT_THREADS) == "1"


def test_a_users_own_blas_setting_is_kept():
    code = "import os; from voicegui.cli.preload import single_blas_thread; single_blas_thread(); " \
           f"print(os.environ[{BLAS_THREADS_VARIABLE!r}])"
    assert run_python(code, **{BLAS_THREADS_VARIABLE: "4"}) == "4"
    assert run_python(code) == "1"


def test_the_command_line_sets_it_before_anything_else():
    """cli.main.main sets it at its first line, so the built-in voices' process (forked from it) and every
    command (the window included) start numpy with it: here, `voicegui --help`, which exits while parsing."""
    code = "import os\nfrom voicegui.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n" \
           f"    pass\nprint(os.environ.get({BLAS_THREADS_VARIABLE!r}))"
    assert run_python(code).splitlines()[-1] == "1"


def test_import_quietly_reports_success_and_leaves_a_failure_to_the_module_user(caplog):
    assert import_quietly("json") is True
    with caplog.at_level(logging.DEBUG, logger="voicegui.cli.preload"):
        assert import_quietly("voicegui_no_such_module") is False
    assert "voicegui_no_such_module" in caplog.text
    assert "voicegui_no_such_module" not in sys.modules  # the user's own import raises the error again
