"""A/B tab: the toggle (button, Space, Ctrl+B) switches which voice plays; after each side's first fetch the
switch replays from memory with no request. Real built-in server, real audio on the null sink."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import CLIP_SECONDS, until
from tests.ui.test_main_window import click

pytestmark = pytest.mark.audio


async def playing(panel, count: int, seconds: float = 0.3) -> None:
    """Wait until play number `count` is audible for `seconds`."""
    await until(lambda: len(panel.plays) == count and panel.current_session() is not None
                and panel.current_session().snapshot().frames_played > 24000 * seconds, 10,
                f"play {count} to be heard")


async def test_toggle_switches_voice_and_replays_from_cache(qtbot, window, server, artifacts_dir):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo", "mp3")
    first_record = len(server.records)

    click(qtbot, panel.toggle_button)  # nothing played yet: A
    await playing(panel, 1)
    click(qtbot, panel.toggle_button)
    await playing(panel, 2)
    window.resize(1100, 720)
    await asyncio.sleep(0.2)
    assert window.grab().save(str(artifacts_dir / "ui-ab.png"))

    # the keys, with the panel focused: Space (not in a text field: there it types a space), then Ctrl+B,
    # which works in the editable voice box too
    window.activateWindow()
    panel.setFocus()
    await until(lambda: window.isActiveWindow() and panel.hasFocus(), 3, "focus on the panel")
    QTest.keyClick(panel, Qt.Key.Key_Space)
    await playing(panel, 3)
    panel.sides["A"].voice.setFocus()
    await until(lambda: panel.sides["A"].voice.hasFocus(), 3, "focus in the voice box")
    QTest.keyClick(panel.sides["A"].voice, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    await playing(panel, 4)
    assert panel.sides["A"].voice.currentText() == "alloy"  # nothing typed into it

    plays = panel.plays
    assert [(p.side, p.voice, p.format) for p in plays] == [
        ("A", "alloy", "pcm"), ("B", "echo", "mp3"), ("A", "alloy", "pcm"), ("B", "echo", "mp3")]
    assert [p.replayed for p in plays] == [False, False, True, True]
    # each switch stopped the other side before starting: never two at once
    for before in plays[:-1]:
        assert before.metrics is not None and before.metrics.stopped
        assert before.session.last_byte is not None
    records = server.records[first_record:]
    assert [(r.voice, r.format) for r in records] == [("alloy", "pcm"), ("echo", "mp3")], \
        "after the first fetch of each side, switching must not ask the server again"
    # the switches to a side already fetched continue at the same moment, from the bytes first received
    assert plays[2].offset_s > 0 and plays[3].offset_s > 0
    assert window.session is plays[3].session  # the plots follow the A/B panel

    click(qtbot, panel.stop_button)
    await until(lambda: not panel.is_playing(), 5, "A/B to stop")
    assert plays[3].metrics.stopped
    # only the live plays are Speaks in the history
    await until(lambda: window.history_panel.table.rowCount() == 2, 3, "the history rows")

    # the window's Speak takes over from A/B and the plots follow it again
    click(qtbot, panel.toggle_button)
    await playing(panel, 5, 0.1)
    click(qtbot, window.speak_button)
    await until(lambda: window.is_speaking() and not panel.is_playing(), 5, "the Speak to take over")
    assert panel.plays[4].metrics.stopped and window.session is window.session
    await asyncio.wait_for(window.playback.done.wait(), 10)


async def test_window_stop_and_esc_stop_ab(qtbot, window, server):
    from voicegui.server.shaping import Shaping

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo")
    assert not window.stop_button.isEnabled()
    click(qtbot, panel.toggle_button)
    await playing(panel, 1, 0.1)
    assert window.stop_button.isEnabled(), "Stop must be usable while A/B plays"
    click(qtbot, window.stop_button)
    await until(lambda: not panel.is_playing(), 5, "A/B to stop")
    assert panel.plays[0].metrics.stopped
    assert not window.stop_button.isEnabled()

    # Esc (the window's shortcut) stops it too, with the focus anywhere in the window
    window.activateWindow()
    click(qtbot, panel.toggle_button)
    await playing(panel, 2, 0.1)
    panel.setFocus()
    await until(lambda: window.isActiveWindow() and panel.hasFocus(), 3, "focus on the panel")
    QTest.keyClick(panel, Qt.Key.Key_Escape)
    await until(lambda: not panel.is_playing(), 5, "Esc to stop A/B")
    assert panel.plays[1].metrics.stopped and not window.stop_button.isEnabled()


async def test_switch_continues_at_the_same_moment(qtbot, window, server):
    """Not blind: Switch (and Space, Ctrl+B) plays the other side from where this one is, not from 0 s, once
    that side was fetched whole; Play A / Play B still start from the beginning."""
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo", "mp3")  # an mp3 side: decoded from the cached body to start mid-way
    first_record = len(server.records)

    click(qtbot, panel.sides["A"].play_button)
    await until(lambda: len(panel.plays) == 1 and panel.plays[0].metrics is not None, 10, "A to play to its end")
    assert panel.plays[0].metrics.completed
    click(qtbot, panel.sides["B"].play_button)  # B's first play: a live fetch, from the beginning
    await playing(panel, 2, 0.5)

    click(qtbot, panel.toggle_button)  # to A, which is cached: at B's moment
    await playing(panel, 3, 0.1)
    b, a = panel.plays[1], panel.plays[2]
    assert (a.side, a.voice, a.format, a.replayed) == ("A", "alloy", "pcm", True)
    # audio_played_s is rounded to 4 decimals (SessionMetrics); the offset is exact frames: compare alike
    assert 0.5 <= round(a.offset_s, 4) <= b.metrics.audio_played_s, "A must continue where B was when switched"
    assert "from 0:0" in panel.now.text()

    await playing(panel, 3, 0.3)
    click(qtbot, panel.toggle_button)  # back to B, cached now: at A's moment, later than where A began
    await playing(panel, 4, 0.05)
    b2 = panel.plays[3]
    assert (b2.side, b2.voice, b2.format, b2.replayed) == ("B", "echo", "mp3", True)
    assert a.offset_s + 0.3 <= b2.offset_s and round(b2.offset_s - a.offset_s, 4) <= a.metrics.audio_played_s
    await asyncio.wait_for(b2.playback.done.wait(), 10)
    # it played the rest of the clip only: the audio from where it began to the end
    assert b2.metrics.completed
    assert b2.offset_s + b2.metrics.audio_played_s == pytest.approx(CLIP_SECONDS, abs=0.1)

    # played to the end: the next switch starts from the beginning; so does a Play button at any time
    click(qtbot, panel.toggle_button)
    await playing(panel, 5, 0.1)
    assert (panel.plays[4].side, panel.plays[4].offset_s) == ("A", 0.0)
    click(qtbot, panel.sides["B"].play_button)
    await playing(panel, 6, 0.1)
    assert (panel.plays[5].side, panel.plays[5].offset_s) == ("B", 0.0)
    records = server.records[first_record:]
    assert [(r.voice, r.format) for r in records] == [("alloy", "pcm"), ("echo", "mp3")], \
        "switching between fetched sides must not ask the server again"
    await panel.stop_and_wait()
