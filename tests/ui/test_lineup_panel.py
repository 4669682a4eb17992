"""Line-up tab: three voices in the order asked, the highlight following the speaker, results, report, presets.
Real built-in (replay) server and real audio on the null sink; waits are awaited asyncio polls."""

from __future__ import annotations

import asyncio
import csv

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import CLIP_SECONDS, until
from tests.ui.test_main_window import click
from voicegui.features.lineup import WARMUP_TEXT, load_presets

pytestmark = pytest.mark.audio

ORDER = ["shimmer", "alloy", "echo"]


async def test_lineup_runs_in_order_with_highlight_results_and_report(qtbot, window, server, tmp_path,
                                                                      artifacts_dir):
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)  # fills the voice list from the provider
    assert len(panel.visible_voices()) >= 3
    panel.set_checked(ORDER, {"alloy": "mp3"})
    panel.text.setPlainText("Three voices, one text.")
    seen: list[tuple[int, str | None]] = []
    panel.started.connect(lambda i: seen.append((i, panel.highlighted_voice())))
    first_record = len(server.records)
    shot = asyncio.Event()

    async def screenshot_while_second_speaks() -> None:
        await until(lambda: len(seen) == 2 and panel.current_session() is not None
                    and panel.current_session().snapshot().frames_played > 24000 * 0.5, 15, "voice 2 to play")
        window.resize(1100, 720)
        await asyncio.sleep(0.3)
        assert window.grab().save(str(artifacts_dir / "ui-lineup-running.png"))
        shot.set()

    shooter = asyncio.ensure_future(screenshot_while_second_speaks())
    click(qtbot, panel.run_button)
    await until(lambda: panel.is_running(), 5, "the line-up to start")
    # the window's Stop stops whatever plays, so it is enabled while the line-up runs
    assert window.stop_button.isEnabled() and panel.stop_button.isEnabled()
    await until(lambda: not panel.is_running(), 30, "the line-up to finish")
    await asyncio.wait_for(shooter, 5)

    assert seen == [(0, "shimmer"), (1, "alloy"), (2, "echo")], "the highlight follows the speaking voice"
    assert panel.highlighted_voice() is None  # cleared at the end
    records = server.records[first_record:]
    # each voice is warmed by a short untimed request in its own format right before it is measured
    assert [(r.voice, r.format, r.input_chars == len(WARMUP_TEXT)) for r in records] == [
        ("shimmer", "pcm", True), ("shimmer", "pcm", False), ("alloy", "mp3", True), ("alloy", "mp3", False),
        ("echo", "pcm", True), ("echo", "pcm", False)]
    assert all(r.cold_ttfa_ms is not None for r in panel.results)
    assert [panel.results_table.item(row, 4).text() for row in range(3)] == [
        f"{r.cold_ttfa_ms:.0f} ms" for r in panel.results]  # the Cold column
    assert [r.voice for r in panel.results] == ORDER
    for r in panel.results:
        assert r.ok, r.error
        assert r.duration_s == pytest.approx(CLIP_SECONDS, abs=0.1) and r.ttfa_ms is not None
    assert panel.results_table.rowCount() == 3
    assert [panel.results_table.item(row, 1).text() for row in range(3)] == ORDER
    # sortable by TTFA: the table order follows the numbers
    panel.results_table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    shown = [panel.results_table.item(row, 3).text() for row in range(3)]
    assert shown == [f"{v:.0f} ms" for v in sorted(r.ttfa_ms for r in panel.results)]
    # every voice is in the history, newest first
    await until(lambda: window.history_panel.table.rowCount() == 3, 3, "the history rows")
    assert [e.voice for e in window.history.entries()] == ORDER
    assert panel.export_button.isEnabled()

    report = await panel.export_report(tmp_path / "lineup.html")
    html = report.read_text(encoding="utf-8")
    assert html.count("<audio") == 3 and "Three voices, one text." in html
    with open(tmp_path / "lineup.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["voice"] for r in rows] == ORDER
    assert shot.is_set()
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-lineup-done.png"))


async def test_lineup_stop_and_speak_never_overlap(qtbot, window, server):
    from voicegui.server.shaping import Shaping

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_checked(["alloy", "echo"])
    click(qtbot, panel.run_button)
    await until(lambda: panel.current_session() is not None
                and panel.current_session().snapshot().frames_played > 2400, 10, "the line-up to play")
    lineup_session = panel.current_session()
    # Speak in the window stops the line-up first (one thing plays at a time).
    click(qtbot, window.speak_button)
    # is_speaking() is true from the click on; entered_at is set once the Speak's task has begun (a loop turn
    # later): wait for both, or a busy machine sees entered_at still None. Generous: order, not speed.
    await until(lambda: not panel.is_running() and window.is_speaking() and window.playback.entered_at is not None,
                15, "the Speak to take over")
    assert lineup_session.metrics is not None and lineup_session.metrics.stopped
    assert len(panel.results) == 1 and "Stopped" in panel.status.text()
    assert window.playback.entered_at >= lineup_session.metrics.marks.request_sent
    # Esc stops the window's Speak
    window.stop()
    await asyncio.wait_for(window.playback.done.wait(), 15)


async def test_presets_save_and_delete(qtbot, window):
    panel = window.lineup_panel
    assert "pangram" in [panel.preset.itemText(i) for i in range(panel.preset.count())]
    panel.preset.setCurrentText("numbers")
    assert "invoice" in panel.text.toPlainText()
    panel.text.setPlainText("My own comparison text.")
    panel.save_preset("mine")
    assert load_presets()["mine"] == "My own comparison text."
    assert panel.preset.currentText() == "mine"
    panel.preset.setCurrentText("pangram")
    panel.preset.setCurrentText("mine")
    assert panel.text.toPlainText() == "My own comparison text."
    panel.delete_preset_button.click()
    assert "mine" not in load_presets() and "mine" not in [panel.preset.itemText(i)
                                                           for i in range(panel.preset.count())]


async def test_window_stop_button_stops_the_lineup(qtbot, window, server):
    from voicegui.server.shaping import Shaping

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_checked(["alloy", "echo"])
    assert not window.stop_button.isEnabled()
    click(qtbot, panel.run_button)
    await until(lambda: panel.current_session() is not None
                and panel.current_session().snapshot().frames_played > 2400, 10, "the line-up to play")
    assert window.stop_button.isEnabled(), "Stop must be usable while the line-up plays"
    session = panel.current_session()
    click(qtbot, window.stop_button)
    await until(lambda: not panel.is_running(), 5, "the line-up to stop")
    assert session.metrics is not None and session.metrics.stopped
    assert len(panel.results) == 1 and "Stopped" in panel.status.text()
    assert not window.stop_button.isEnabled() and window.speak_button.isEnabled()


async def test_long_lineup_text_goes_out_in_pieces_as_one_session(qtbot, window, server):
    from voicegui.text import split_for_request

    sentence = "This sentence is here to make the line-up text longer than one request may be. "
    text = sentence * 60  # ~4900 characters: two requests of at most 4096
    pieces = split_for_request(text, 4096)
    assert len(pieces) == 2
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_checked(["alloy"])
    panel.text.setPlainText(text)
    first_record = len(server.records)
    click(qtbot, panel.run_button)
    await until(lambda: panel.is_running(), 5, "the line-up to start")
    await until(lambda: not panel.is_running(), 20, "the line-up to finish")
    records = [r for r in server.records[first_record:] if r.input_chars != len(WARMUP_TEXT)]
    assert [r.input_chars for r in records] == [len(p) for p in pieces]
    assert all(r.input_chars <= 4096 for r in records)
    (result,) = panel.results
    assert result.ok, result.error
    # one gapless session: both pieces' audio (the replay engine sends the clip for each) in one utterance
    assert result.duration_s == pytest.approx(2 * CLIP_SECONDS, abs=0.1)
    await until(lambda: window.history_panel.table.rowCount() == 2, 3, "a history row per piece")


async def test_match_loudness_box_measures_each_voice_on_its_warmup(qtbot, window, server):
    from voicegui.features.lineup import LOUDNESS_WARMUP_TEXT
    from voicegui.features.loudness import TARGET_LUFS, measure

    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_checked(["alloy"])
    panel.match_loudness.setChecked(True)
    first_record = len(server.records)
    click(qtbot, panel.run_button)
    await until(lambda: panel.is_running(), 5, "the line-up to start")
    await until(lambda: not panel.is_running(), 20, "the line-up to finish")
    assert [r.input_chars for r in server.records[first_record:]][0] == len(LOUDNESS_WARMUP_TEXT)
    (result,) = panel.results
    assert result.ok, result.error
    played = measure(result.played, result.sample_rate).lufs
    # the test clip is louder than the target: turned down to it
    assert result.gain_db < 0 and played == pytest.approx(TARGET_LUFS, abs=0.5)
