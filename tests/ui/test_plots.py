"""The live plots: what they draw, and that they keep out of the way while a Speak decides when to start."""

from __future__ import annotations

import time

import pytest

from tests.ui.conftest import until
from tests.ui.test_main_window import click
from voicegui.server.shaping import Shaping
from voicegui.ui.plots import QUIET_START_S

pytestmark = pytest.mark.audio


async def test_no_redraw_before_first_byte_and_in_the_quiet_start(qtbot, window, server):
    # A server that thinks for 0.5 s and then streams near real time, with a prebuffer long enough that
    # playback starts well after the quiet start: the fill is still drawn while buffering.
    server.shaping = Shaping(first_byte_delay_s=0.5, throughput_x=1.0, write_bytes=1024)
    window.tuning.set_prebuffer(1000)
    draws: list[tuple[float, str]] = []
    plots = window.plots
    original = plots.buffer.update_from

    def counting(snap):
        draws.append((time.monotonic(), snap.state))
        original(snap)

    plots.buffer.update_from = counting
    click(qtbot, window.speak_button)
    await until(lambda: window.playbacks and window.playbacks[-1].session is not None, 5, "the Speak to start")
    session = window.playbacks[-1].session
    await until(lambda: session.state == "playing", 10, "playback to start")
    first_byte = session.fetch_marks.first_byte
    assert first_byte is not None
    assert draws, "the plots were never redrawn"
    # nothing before the first byte + the quiet start, then the buffer filling up was drawn before playing
    assert min(t for t, _ in draws) >= first_byte + QUIET_START_S
    assert any(state == "buffering" for _, state in draws)
    window.stop_button.click()
    await until(lambda: window.speak_button.isEnabled(), 5, "Speak to be enabled again")
