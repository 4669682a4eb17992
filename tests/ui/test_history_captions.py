"""History tab: any entry's captions are exported from its context menu as WebVTT or SRT, marked as estimated,
and an export that cannot be written says so in the banner. Real built-in server, real audio on the null sink."""

from __future__ import annotations

import html

import pytest
import srt
import webvtt
from PySide6.QtWidgets import QFileDialog

from tests.ui.conftest import until
from tests.ui.test_history_panel import speak_and_record

pytestmark = pytest.mark.audio


async def test_export_captions_from_the_menu(qtbot, window, tmp_path, monkeypatch):
    panel = window.history_panel
    entry_id = await speak_and_record(qtbot, window)
    entry = window.history.get(entry_id)
    chosen = tmp_path / "captions"  # no extension: the chosen filter decides it
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(chosen), "WebVTT captions (*.vtt)")))
    actions = {a.text().replace("&", ""): a for a in panel.build_menu(entry_id).actions() if a.text()}
    actions["Export captions (SRT/WebVTT)…"].trigger()
    vtt = tmp_path / "captions.vtt"
    await until(lambda: vtt.exists(), 10, "the captions file")
    raw = vtt.read_text(encoding="utf-8")
    assert "NOTE Timings estimated by voicegui" in raw
    cues = list(webvtt.from_string(raw))
    assert cues and " ".join(html.unescape(c.text) for c in cues).split() == entry.text.split()

    assert await panel.save_captions(entry_id, tmp_path / "c.srt")
    subs = list(srt.parse((tmp_path / "c.srt").read_text(encoding="utf-8"), ignore_errors=False))
    assert subs[0].content == "[Timings estimated by voicegui]" and len(subs) == len(cues) + 1

    assert not await panel.save_captions(entry_id, tmp_path / "c.txt")
    assert window.banner.isVisible() and ".srt or .vtt" in window.banner.text()
    window.banner.hide()
    (tmp_path / "a-file").write_text("")
    assert not await panel.save_captions(entry_id, tmp_path / "a-file" / "c.srt")  # its folder is a file
    assert window.banner.isVisible() and "c.srt" in window.banner.text()
    window.banner.hide()
