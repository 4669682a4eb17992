"""History tab: Speaks land in the table, replay from the cache plays through the session with no request, saving
and dragging give the exact bytes, the cache bound follows the setting. Real built-in server, real audio on the
null sink; waits are awaited asyncio polls (qtbot.waitUntil hangs under qasync)."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.ui.conftest import CLIP_SECONDS, until
from tests.ui.test_main_window import speak_and_wait
from voicegui.ui.history_panel import COLUMNS, MB

pytestmark = pytest.mark.audio

COL = {name: i for i, (name, _) in enumerate(COLUMNS)}


async def speak_and_record(qtbot, window) -> str:
    """Speak, wait until its history row is there; the id of the newest entry."""
    before = len(window.history.entries())
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.completed, playback.metrics
    await until(lambda: len(window.history.entries()) == before + 1
                and window.history_panel.table.rowCount() == before + 1, 5, "the history row")
    return window.history.entries()[-1].id


def cell(panel, row: int, name: str) -> str:
    return panel.table.item(row, COL[name]).text()


async def test_speak_lands_in_history_and_double_click_replays_from_cache(qtbot, window, server, artifacts_dir):
    panel = window.history_panel
    first = await speak_and_record(qtbot, window)
    entry = window.history.get(first)
    assert entry.provider == "builtin" and entry.format == "pcm" and entry.voice == window.provider_panel.voice_id()
    assert entry.ttfa_ms is not None and entry.duration_s == pytest.approx(CLIP_SECONDS, abs=0.05)
    assert entry.bytes == entry.audio_bytes > 0
    assert "api_key" not in entry.to_json() and server.token not in str(entry.to_json())
    assert panel.entry_id(0) == first
    assert cell(panel, 0, "Voice") == entry.voice and cell(panel, 0, "Format") == "pcm"
    assert cell(panel, 0, "TTFA") == f"{entry.ttfa_ms:.0f} ms" and cell(panel, 0, "Audio") == "cached"
    second = await speak_and_record(qtbot, window)
    assert panel.entry_id(0) == second and panel.entry_id(1) == first  # newest first

    window.tabs.setCurrentWidget(panel)
    await asyncio.sleep(0.05)
    requests = len(server.records)
    playbacks = len(window.playbacks)
    rect = panel.table.visualItemRect(panel.table.item(1, 0))
    # A real double-click starts with a press: Qt's item views only act on a double-click of the pressed cell.
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    await until(lambda: len(window.playbacks) == playbacks + 1, 5, "the replay to start")
    replay = window.playbacks[-1]
    await asyncio.wait_for(replay.done.wait(), 10)
    await asyncio.sleep(0.1)
    m = replay.metrics
    assert m.completed and m.error is None, m
    assert m.audio_played_s == pytest.approx(CLIP_SECONDS, abs=0.05)
    assert len(server.records) == requests, "a replay must not ask the server"
    assert replay.session.original_bytes == window.history.original(first)
    assert replay.options.source is not None and replay.request.voice == entry.voice
    assert window.plots.waveform.updates > 3 and window.plots.waveform.peak > 0.1  # the same plots
    assert window.ttfa.ttfa_text() == f"{m.ttfa_ms:.0f} ms"
    assert "Replaying" in window.status_line.text() or "Done" in window.status_line.text()
    await asyncio.sleep(0.2)
    assert panel.table.rowCount() == 2, "a replay is not a new Speak"
    window.resize(1100, 720)
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-history.png"))


async def test_save_original_played_wav_drag_and_delete(qtbot, window, tmp_path, monkeypatch):
    panel = window.history_panel
    entry_id = await speak_and_record(qtbot, window)
    original = window.history.original(entry_id)

    target = tmp_path / "saved.pcm"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    menu = panel.build_menu(entry_id)
    actions = {a.text().replace("&", ""): a for a in menu.actions() if a.text()}
    assert set(actions) == {"Replay", "Save original bytes…", "Save played WAV…", "Export captions (SRT/WebVTT)…",
                            "Delete"}
    actions["Save original bytes…"].trigger()
    await until(lambda: target.exists(), 5, "the saved file")
    assert target.read_bytes() == original

    wav_path = tmp_path / "played.wav"
    assert await panel.save(entry_id, wav_path, played=True)
    with wave.open(str(wav_path)) as w:
        assert w.getframerate() == 24000 and w.getnchannels() == 1
        assert w.getnframes() / 24000 == pytest.approx(CLIP_SECONDS, abs=0.02)

    # Dragging a row out hands the drop target a file URL holding the original bytes.
    mime = panel.table.mimeData([panel.table.item(0, 0)])
    urls = mime.urls()
    assert len(urls) == 1 and urls[0].isLocalFile()
    dragged = Path(urls[0].toLocalFile())
    assert dragged.suffix == ".pcm" and dragged.read_bytes() == original

    actions["Delete"].trigger()
    assert panel.table.rowCount() == 0 and window.history.entries() == []
    # an evicted/missing entry reports, it does not raise into Qt
    assert not await panel.save(entry_id, tmp_path / "gone.pcm")
    assert window.banner.isVisible() and "gone.pcm" in window.banner.text()
    window.banner.hide()
    await window.shutdown()
    assert not dragged.exists(), "the drag copies go with the window"


async def test_cache_bound_holds_through_the_setting(qtbot, window):
    panel = window.history_panel
    panel.max_mb.setValue(0.1)  # 104857 bytes: one 1.5 s pcm clip (72000 bytes) fits, two do not
    assert window.history.max_bytes == int(0.1 * MB)
    first = await speak_and_record(qtbot, window)
    second = await speak_and_record(qtbot, window)
    assert window.history.total_bytes() <= int(0.1 * MB)
    assert window.history.get(first).evicted and not window.history.get(second).evicted
    assert cell(panel, 1, "Audio") == "evicted" and cell(panel, 0, "Audio") == "cached"
    # lowering it further evicts at once; the measurements stay
    panel.max_mb.setValue(0.0)
    assert window.history.total_bytes() == 0 and panel.table.rowCount() == 2
    assert window.collect_settings().history_max_mb == 0.0
    # and a replay of an evicted entry says why instead of playing
    playbacks = len(window.playbacks)
    panel.replay_requested.emit(second)
    await until(lambda: window.banner.isVisible(), 3, "the banner")
    assert "evicted" in window.banner.text() and len(window.playbacks) == playbacks


async def test_history_max_mb_is_validated_and_restored(qtbot, server):
    from tests.ui.conftest import close_window, open_window
    from voicegui import settings as settings_mod

    s = settings_mod.Settings(history_max_mb=5.0)
    settings_mod.save(s)
    assert settings_mod.from_json({"history_max_mb": -1})[1]  # refused, default kept
    assert settings_mod.from_json({"history_max_mb": 7})[0].history_max_mb == 7.0
    win = await open_window(server)
    try:
        assert win.history_panel.max_mb.value() == 5.0 and win.history.max_bytes == 5 * MB
    finally:
        await close_window(win)
