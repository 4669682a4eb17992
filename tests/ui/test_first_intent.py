"""The user's first sign of meaning to Speak (ui/first_intent.py) and the openai SDK preload it starts
(ui/app.py preload_sdk_on_intent), in a real shown window; and, in a real launch, an idle window that has not
imported the SDK at all."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent, QFocusEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import until
from voicegui.ui.app import SDK_PRELOADED, STARTUP_DONE, preload_sdk_on_intent
from voicegui.ui.first_intent import FirstIntent

pytestmark = pytest.mark.audio  # the window fixture's server and player

ROOT = Path(__file__).resolve().parents[2]


def watching(window, reasons: list[str]) -> FirstIntent:
    """A watcher of `window` reporting to `reasons`, its input watch on (as once the start-up is done)."""
    watcher = FirstIntent(window.speak_button, window.text_edit, reasons.append)
    watcher.watch_input()
    return watcher


def enter(widget) -> None:
    """The pointer enters `widget` (as the window system reports it)."""
    QApplication.sendEvent(widget, QEnterEvent(QPointF(2, 2), QPointF(2, 2), QPointF(2, 2)))


async def test_typing_is_a_sign_and_only_the_first_is_reported(qtbot, window):
    reasons: list[str] = []
    watcher = watching(window, reasons)
    try:
        QTest.keyClick(window.text_edit, Qt.Key.Key_A)
        QTest.keyClick(window.text_edit, Qt.Key.Key_B)
        assert len(reasons) == 1 and reasons[0].split()[0] in ("KeyPress", "ShortcutOverride"), reasons
        assert not watcher.watching
    finally:
        watcher.stop()


async def test_showing_painting_focus_in_the_text_and_the_pointer_elsewhere_are_not_signs(qtbot, window):
    reasons: list[str] = []
    watcher = watching(window, reasons)
    try:
        window.hide()
        window.show()
        window.activateWindow()
        window.text_edit.setFocus()
        QApplication.sendEvent(window.text_edit, QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.OtherFocusReason))
        enter(window.text_edit)
        enter(window)
        window.repaint()
        await asyncio.sleep(0.3)  # timers, paints and whatever else the idle window does meanwhile
        assert reasons == [] and watcher.watching
    finally:
        watcher.stop()


@pytest.mark.parametrize("sign", ["pointer", "focus", "press"])
async def test_the_pointer_or_the_focus_on_speak_or_a_click_anywhere_is_a_sign(qtbot, window, sign):
    reasons: list[str] = []
    watcher = watching(window, reasons)
    try:
        if sign == "pointer":
            enter(window.speak_button)
        elif sign == "focus":
            QApplication.sendEvent(window.speak_button,
                                   QFocusEvent(QEvent.Type.FocusIn, Qt.FocusReason.TabFocusReason))
        else:
            QTest.mouseClick(window.voice, Qt.MouseButton.LeftButton)
            window.voice.hidePopup()
        assert len(reasons) == 1, reasons
        assert ("Speak button" in reasons[0]) == (sign != "press"), reasons
    finally:
        watcher.stop()


async def test_before_the_input_watch_only_the_text_edited_is_a_sign(qtbot, window):
    reasons: list[str] = []
    watcher = FirstIntent(window.speak_button, window.text_edit, reasons.append)
    try:
        enter(window.speak_button)
        QTest.mouseClick(window.voice, Qt.MouseButton.LeftButton)
        window.voice.hidePopup()
        assert reasons == [] and watcher.watching
        QTest.keyClick(window.text_edit, Qt.Key.Key_A)
        assert reasons == ["the text was edited"]
        assert not watcher.watching
        watcher.watch_input()  # the start-up ends after the sign: nothing more is watched
        enter(window.speak_button)
        assert reasons == ["the text was edited"]
    finally:
        watcher.stop()


async def test_stop_before_any_sign_reports_nothing(qtbot, window):
    reasons: list[str] = []
    watcher = watching(window, reasons)
    watcher.stop()
    watcher.stop()
    QTest.keyClick(window.text_edit, Qt.Key.Key_A)
    enter(window.speak_button)
    assert reasons == [] and not watcher.watching


async def test_the_sdk_is_preloaded_at_the_first_sign_once_the_start_up_is_done(qtbot, window, caplog):
    started = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.INFO, logger="voicegui.ui.app"):
        watcher, task = preload_sdk_on_intent(window, started)
        try:
            await asyncio.sleep(0.2)
            QTest.keyClick(window.text_edit, Qt.Key.Key_A)  # the sign comes while the start-up still runs
            await asyncio.sleep(0.3)
            assert not task.done() and SDK_PRELOADED not in caplog.text
            started.set_result(None)
            await asyncio.wait_for(task, 60)
            assert caplog.text.count(SDK_PRELOADED) == 1
        finally:
            watcher.stop()
            task.cancel()


async def test_a_speak_with_no_sign_before_it_stops_the_watcher_and_still_plays(qtbot, window, server):
    started = asyncio.get_running_loop().create_future()
    started.set_result(None)
    watcher, task = preload_sdk_on_intent(window, started)
    try:
        window.speak_button.click()  # no input event: a Speak handed over, or a shortcut of the desktop's
        await until(lambda: window.playback is not None, 5, "the Speak to start")
        assert not watcher.watching and not task.done()
        await asyncio.wait_for(window.playback.done.wait(), 20)
        metrics = window.playback.metrics
        assert metrics is not None and metrics.completed and metrics.audio_played_s > 1.0, metrics
    finally:
        watcher.stop()
        task.cancel()


def test_the_idle_window_has_not_imported_the_sdk(tmp_path):
    """A real launch, no input: once its start-up is done, neither the SDK's log line nor pydantic's compiled
    core (which only the SDK imports) is in the process."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", VOICEGUI_CONFIG_DIR=str(tmp_path / "config"),
               VOICEGUI_CACHE_DIR=str(tmp_path / "cache"), VOICEGUI_RUNTIME_DIR=str(tmp_path / "run"))
    proc = subprocess.Popen([sys.executable, "-m", "voicegui", "-v"], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if STARTUP_DONE in line:
                break
        assert any(STARTUP_DONE in line for line in lines), "".join(lines)
        time.sleep(1.0)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "_pydantic_core" not in maps
        assert "numpy" in maps  # what the start-up does load is seen there
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(15) == 130
        assert SDK_PRELOADED not in "".join(lines) + rest
        assert "Traceback" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
