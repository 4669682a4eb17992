"""The real window against a hostile server on 127.0.0.1 (tests/ui/hostile_server.py): what a server says is
shown as plain text (never rendered as HTML: `<img src="/dev/zero">` aborted the window), redacted (a key it
echoes back is not shown or stored), cut to a readable length; a Base URL that sends the key in clear is
flagged under the field as it is typed.

Waiting happens by awaiting asyncio (``until``), never with qtbot.waitUntil (hangs under qasync).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import until
from tests.ui.hostile_server import ESCAPES, HostileServer
from voicegui.stream.fetch import insecure_http_warning
from voicegui.ui.safe_text import MAX_SHOWN_CHARS

pytestmark = pytest.mark.audio

KEY = "sk-proj-EchoedBack1234567890abcdef"


def type_base_url(qtbot, window, url: str, key: str = KEY) -> None:
    """Switch to the Custom provider and type the URL as a user would (Return ends the editing)."""
    window.provider_panel.set_provider("custom")
    window.api_key.setText(key)
    window.base_url.clear()
    qtbot.keyClicks(window.base_url, url)
    qtbot.keyClick(window.base_url, Qt.Key.Key_Return)


def files_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


async def speak_and_wait(qtbot, window, timeout_s: float = 15.0):
    before = len(window.playbacks)
    qtbot.mouseClick(window.speak_button, Qt.MouseButton.LeftButton)
    await until(lambda: len(window.playbacks) > before, 5, "the Speak to start")
    playback = window.playbacks[-1]
    await asyncio.wait_for(playback.done.wait(), timeout_s)
    await asyncio.sleep(0.05)
    return playback


def assert_plain(label) -> None:
    assert label.textFormat() == Qt.TextFormat.PlainText


async def test_html_error_with_an_echoed_key_is_shown_as_text_and_redacted(qtbot, window, tmp_path):
    with HostileServer("401") as hostile:
        type_base_url(qtbot, window, hostile.base_url)
        connection = window.provider_panel.connection
        await until(lambda: "rejected" in connection.text(), 10, "the 401 from /models")
        assert KEY in hostile.seen_keys  # the key did reach the server, which echoed it back
        assert_plain(connection)
        assert '<img src="/dev/zero">' in connection.text()
        assert KEY not in connection.text() and "[REDACTED]" in connection.text()
        assert "\x1b" not in connection.text()  # control characters are not shown either
        assert window.isVisible()

        # Test connection: the same answer, through providers.test_connection
        connection.setText("")
        qtbot.mouseClick(window.provider_panel.test_button, Qt.MouseButton.LeftButton)
        await until(lambda: "rejected" in connection.text(), 10, "Test connection")
        assert "<img" in connection.text() and KEY not in connection.text()

        # Speak: the 401 of /audio/speech reaches the banner, the status line and the history
        playback = await speak_and_wait(qtbot, window)
        assert playback.metrics is not None and playback.metrics.error
        assert window.banner.isVisible()
        for label in (window.banner.label, window.status_line):
            assert_plain(label)
            assert KEY not in label.text() and "\x1b" not in label.text()
        assert "<img" in window.banner.text()
        assert window.status_line.text().startswith("Error:")
        await until(lambda: window.history_panel.table.rowCount() > 0, 5, "the history row")
        tip = window.history_panel.table.item(0, 0).toolTip()
        assert "&lt;img" in tip and "<img" not in tip and KEY not in tip
        assert window.isVisible()
    # nothing the window stored (history index, settings) holds the key the server echoed
    await window.shutdown()
    stored = files_text(tmp_path / "cache") + files_text(tmp_path / "config")
    assert "Incorrect API key provided" in stored  # the error was recorded...
    assert KEY not in stored  # ...redacted


async def test_an_html_page_as_audio_is_quoted_as_text(qtbot, window):
    with HostileServer("html") as hostile:
        type_base_url(qtbot, window, hostile.base_url, key="")
        await until(lambda: "voices from" in window.provider_panel.connection.text(), 10, "the voice list")
        window.provider_panel.voice.setCurrentText("alloy")
        playback = await speak_and_wait(qtbot, window)
        assert playback.metrics is not None and playback.metrics.error
        assert_plain(window.banner.label)
        assert '<img src="/dev/zero"><h1>Session expired' in window.banner.text()
        assert window.status_line.text().startswith("Error:") and "<h1>" in window.status_line.text()
        assert window.isVisible()


async def test_an_endless_message_is_cut(window):
    window.show_error("<b>" + "x" * 1_000_000 + ESCAPES)
    for label in (window.banner.label, window.status_line):
        assert_plain(label)
        assert len(label.text()) <= MAX_SHOWN_CHARS and label.text().endswith("…")
    assert window.banner.text().startswith("<b>x")
    await asyncio.sleep(0.05)  # a layout pass with the message shown
    assert window.isVisible()


@pytest.mark.parametrize("url,warns", [
    ("http://tts.example.com/v1", True),
    ("http://10.0.0.5:8880/v1", True),
    ("ws://tts.example.com/v1", True),
    ("https://tts.example.com/v1", False),
    ("wss://tts.example.com/v1", False),
    ("http://127.0.0.1:8880/v1", False),
    ("http://localhost:8880/v1", False),
    ("ws://127.0.0.1:8880/v1", False),
])
async def test_a_base_url_in_clear_is_flagged_as_it_is_typed(qtbot, window, url, warns):
    panel = window.provider_panel
    panel.set_provider("custom")
    window.base_url.clear()
    qtbot.keyClicks(window.base_url, url)  # no Return: the note follows the typing
    note = panel.insecure_note
    assert note.isHidden() is not warns, (url, note.text())
    if warns:
        assert "unencrypted" in note.text() and "API key" in note.text()
        if url.startswith("http:"):
            assert note.text() == insecure_http_warning(url)  # the CLI's very words
    # back to the built-in voices: no URL is typed there, no warning
    panel.set_provider("builtin")
    assert note.isHidden()
