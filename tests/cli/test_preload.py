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


# A module whose import takes longer than any of these programs runs: a preload that is still under way.
SLOW_MODULE = "import time\ntime.sleep(30)\n"
# Prints "finalized" if the interpreter runs its atexit handlers (it finalizes) before the process ends.
ATEXIT = "import atexit\natexit.register(lambda: print('finalized', flush=True))\n"


def run_program(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / "slow_module.py").write_text(SLOW_MODULE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_process_ending_during_a_preload_exits_with_its_code_without_finalizing(tmp_path):
    code = ATEXIT + (
        "from voicegui.cli.preload import end_if_still_loading, import_in_background, still_loading\n"
        "import_in_background(['slow_module'])\n"
        "print('said before the end')\n"  # stdout is a pipe here: block-buffered until flushed
        "assert still_loading() == ['voicegui-preload']\n"
        "end_if_still_loading(3)\n"
        "print('returned')\n")
    proc = run_program(code, tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == ["said before the end"]  # flushed; no atexit, nothing after


def test_a_process_whose_preload_finished_ends_as_usual(tmp_path):
    code = ATEXIT + (
        "from voicegui.cli.preload import end_if_still_loading, import_in_background, still_loading\n"
        "import_in_background(['json']).join()\n"
        "assert still_loading() == []\n"
        "end_if_still_loading(3)\n"
        "print('returned')\n")
    proc = run_program(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["returned", "finalized"]


@pytest.mark.parametrize("argv, status, words", [
    (["speak", "Hello.", "--voice", '{"name": "x"}', "--base-url", "http://127.0.0.1:9/v1"], 2,
     'A voice object must be {"id": "<voice id>"}'),  # refused by run_speak: main returns 2
    (["speak", "Hello.", "--speed", "fast"], 2, "invalid float value: 'fast'"),  # argparse: SystemExit(2)
])
def test_a_speak_refused_while_its_preload_imports_ends_at_once_with_its_message(tmp_path, argv, status, words):
    """The console script's entry point: `voicegui speak` preloads the openai SDK on a daemon thread (here a
    module that takes 30 s first), so its usage errors end the process with the preload still running."""
    code = ATEXIT + (
        "import voicegui.cli.main as cli_main\n"
        "cli_main.SPEAK_PRELOAD = ('slow_module',) + cli_main.SPEAK_PRELOAD\n"
        "import sys\n"
        f"sys.argv[1:] = {argv!r}\n"
        "from voicegui.cli.entry import run\n"
        "raise SystemExit(run())\n")
    proc = run_program(code, tmp_path)
    assert proc.returncode == status, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert "finalized" not in proc.stdout


def test_main_called_by_a_program_returns_even_while_its_preload_imports(tmp_path):
    """Only run(), the process's own entry, ends the process early: a program that calls entry.main (the tests of
    the hand-off do) gets the exit status back and goes on."""
    code = ATEXIT + (
        "import voicegui.cli.main as cli_main\n"
        "cli_main.SPEAK_PRELOAD = ('slow_module',) + cli_main.SPEAK_PRELOAD\n"
        "from voicegui.cli.entry import main\n"
        "status = main(['speak', 'Hello.', '--voice', '{\"name\": \"x\"}', '--base-url', 'http://127.0.0.1:9/v1'])\n"
        "print('returned', status, flush=True)\n"
        "import os\n"
        "os._exit(0)\n")  # the slow preload is still under way: not this test's subject
    proc = run_program(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["returned 2"]
