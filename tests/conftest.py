"""Test setup: a real PulseAudio null sink (tests/null_sink.py) for every test that plays audio.

It is started once per test run, before anything imports sounddevice, unless one is already reachable, and
torn down at the end of the run. Qt runs offscreen unless QT_QPA_PLATFORM says otherwise. The windows and
commands of a test run find each other in a private runtime directory ($VOICEGUI_RUNTIME_DIR), never the
user's running voicegui window or another test run's. The run's cache ($VOICEGUI_CACHE_DIR: history, the
built-in voices' cached tables) is a temporary directory too, never the user's; a test that needs its own
history sets its own (tests/ui/conftest.py links the voices' tables back to the run's, so they are built once).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.null_sink import NullSinkError, start_null_sink, stop_null_sink


def _parallel_controller(config: pytest.Config) -> bool:
    """This process only hands tests to pytest-xdist's workers (`-n N`): it plays nothing itself."""
    return bool(getattr(config.option, "numprocesses", None)) and "PYTEST_XDIST_WORKER" not in os.environ


def pytest_configure(config: pytest.Config) -> None:
    if _parallel_controller(config):
        return
    try:
        # Each parallel worker has a sink of its own: tests record the sink's monitor and compare what it played.
        start_null_sink(private="PYTEST_XDIST_WORKER" in os.environ)
    except NullSinkError as exc:
        raise pytest.UsageError(str(exc)) from None
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    # Short (a unix socket path has ~107 bytes) and per run: a window a test starts must not take the
    # requests of another run's `voicegui speak`.
    os.environ["VOICEGUI_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="vg-run-")
    os.environ["VOICEGUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="vg-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    stop_null_sink()
    shutil.rmtree(os.environ.pop("VOICEGUI_RUNTIME_DIR", ""), ignore_errors=True)
    shutil.rmtree(os.environ.pop("VOICEGUI_CACHE_DIR", ""), ignore_errors=True)


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch):
    """An in-memory keyring for this test (also named in $PYTHON_KEYRING_BACKEND for child processes)."""
    import keyring

    from tests.ui.memory_keyring import MemoryKeyring

    old = keyring.get_keyring()
    backend = MemoryKeyring()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.ui.memory_keyring.MemoryKeyring")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(old)


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
async def local_app():
    """start(app) -> base URL of `app` served on 127.0.0.1 (tests/json_server.py); stopped after the test."""
    from tests.json_server import start_app

    runners = []

    async def start(app) -> str:
        runner, url = await start_app(app)
        runners.append(runner)
        return url

    yield start
    for runner in runners:
        await runner.cleanup()
