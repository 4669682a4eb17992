"""Uncaught errors in the window: logged with keys redacted, one non-modal dialog at a time, app keeps running."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.ui.conftest import until
from voicegui import crash
from voicegui.ui.app import _install_crash_dialog


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    # The log file's handler is made once per process: one an earlier test left would write elsewhere.
    crash.uninstall()
    monkeypatch.setenv("VOICEGUI_LOG_DIR", str(tmp_path / "logs"))
    yield tmp_path / "logs"
    crash.uninstall()


def crash_dialogs() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible() and "something went wrong" in w.windowTitle()]


async def test_thread_crash_shows_one_dialog_and_logs_redacted(qtbot, window, log_dir):
    _install_crash_dialog(window, asyncio.get_running_loop())
    crash.register_secret("sk-test-SECRET123")

    def boom() -> None:
        raise RuntimeError("worker failed with key sk-test-SECRET123")

    for _ in range(2):  # the second one must not open a second dialog
        t = threading.Thread(target=boom)
        t.start()
        t.join()
    await until(lambda: len(crash_dialogs()) == 1, what="crash dialog")
    await asyncio.sleep(0.2)
    dialogs = crash_dialogs()
    assert len(dialogs) == 1 and not dialogs[0].isModal()
    assert "SECRET123" not in dialogs[0].text()
    logged = "".join(p.read_text() for p in log_dir.glob("*.log*"))
    assert "worker failed" in logged and "SECRET123" not in logged
    dialogs[0].close()
    await until(lambda: not crash.dialog_open(), what="dialog released")
    assert window.isVisible()  # the app keeps running
