"""Readouts that used to be stale or silent: the stream speed while it streams (not only at the end), the
underruns in the status line at the end, and a visible sign that the network simulator is on.

Real window (offscreen), real built-in server slowed by its shaping, real playback on the null sink.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.ui.conftest import until
from tests.ui.test_main_window import click, speak_and_wait
from voicegui.server.shaping import Shaping

pytestmark = pytest.mark.audio


async def test_stream_speed_shows_while_it_streams(qtbot, window, server):
    # at half real time the 1.5 s clip takes ~3 s to arrive: plenty of time to read the live number
    server.shaping = Shaping(throughput_x=0.5, write_bytes=1024)
    window.tuning.set_prebuffer(100)
    before = len(window.playbacks)
    click(qtbot, window.speak_button)
    await until(lambda: len(window.playbacks) > before and window.session is not None
                and window.session.fetch_marks.first_byte is not None, 10, "the first byte")
    session = window.session
    first_byte = session.fetch_marks.first_byte
    await until(lambda: time.monotonic() - first_byte > 1.2, 5, "a second of streaming")
    await asyncio.sleep(0.3)  # a slow-timer tick
    assert not session.snapshot().fetch_done and session.metrics is None, "still streaming"
    text = window.ttfa.rtf.text()
    match = re.fullmatch(r"(\d+\.\d\d)× real time", text)
    assert match, f"the stream speed should show while it streams, not {text!r}"
    assert 0.2 < float(match.group(1)) < 1.0  # the server sends at 0.5x: well below real time
    await asyncio.wait_for(window.playback.done.wait(), 20)
    await asyncio.sleep(0.05)
    assert window.ttfa.rtf.text() == f"{window.playback.metrics.stream_rtf:.2f}× real time"


async def test_status_line_mentions_the_underruns(qtbot, window, server):
    server.shaping = Shaping(throughput_x=0.5, write_bytes=1024)
    window.tuning.set_prebuffer(100)
    playback = await speak_and_wait(qtbot, window, 20)
    m = playback.metrics
    assert m.completed and m.underrun_episodes >= 2, m
    status = window.status_line.text()
    assert status.startswith("Done: first sound after")
    assert status.endswith(f"; {m.underrun_episodes} underruns, {m.underrun_ms:.0f} ms silent"), status
    server.shaping = Shaping()  # a clean one says nothing about underruns
    window.tuning.set_prebuffer(300)
    playback = await speak_and_wait(qtbot, window, 20)
    assert playback.metrics.underrun_episodes == 0
    assert "underrun" not in window.status_line.text()


async def test_network_simulator_on_is_shown_next_to_speak(qtbot, window, server):
    indicator = window.network.indicator
    bar = window.statusBar()
    assert indicator.parent() is bar, "the indicator is in the status bar, under Speak, whichever tab is open"
    assert not indicator.isVisible()  # nothing simulated
    window.tabs.setCurrentIndex(0)  # the Voice tab: the simulator's own panel is out of sight
    window.network.throughput_x.setValue(0.5)
    await asyncio.sleep(0.05)
    assert indicator.isVisible() and indicator.text() == "Network simulator on"
    assert "0.5× real time" in indicator.toolTip()
    window.provider_panel.set_provider("openai")  # the simulator only slows the built-in voices
    await asyncio.sleep(0.05)
    assert not indicator.isVisible()
    window.provider_panel.set_provider("builtin")
    await asyncio.sleep(0.05)
    assert indicator.isVisible()
    window.network.throughput_x.setValue(0)  # "unlimited": off again
    await asyncio.sleep(0.05)
    assert not indicator.isVisible()
