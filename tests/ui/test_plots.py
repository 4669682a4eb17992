"""The live plots: what they draw, that they keep out of the way while a Speak decides when to start, and that
they do no drawing work that shows nothing new (the window's CPU while speaking)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QObject

from tests.ui.conftest import until
from tests.ui.test_main_window import click, speak_and_wait
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


class _PaintCounter(QObject):
    """Counts the paint events a widget (a plot's viewport) receives."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.paints = 0
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # Qt's name
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


async def test_a_snapshot_that_changed_nothing_repaints_nothing(qtbot, window):
    playback = await speak_and_wait(qtbot, window)
    session = playback.session
    plots = window.plots
    # what the last frame drew (a finished session is drawn once), then the same again, five times
    plots.waveform.update_from(session.snapshot())
    plots.buffer.update_from(session.snapshot())
    await asyncio.sleep(0.1)
    counters = [_PaintCounter(plot.viewport()) for plot in (plots.waveform, plots.buffer)]
    for _ in range(5):
        plots.waveform.update_from(session.snapshot())
        plots.buffer.update_from(session.snapshot())
        await asyncio.sleep(0.05)
    assert [c.paints for c in counters] == [0, 0]


async def test_curves_have_at_most_a_min_and_a_max_per_pixel_column(qtbot, window):
    playback = await speak_and_wait(qtbot, window)
    plots = window.plots
    for width in (1280, 900):
        window.resize(width, 800)
        await asyncio.sleep(0.1)
        pixels = plots.waveform.getPlotItem().getViewBox().width()
        xs, _ys = plots.waveform.curve.getData()
        assert 0 < len(xs) <= 2 * pixels, (len(xs), pixels)
        assert plots.waveform.peak > 0.1  # redrawn from the last snapshot at the new width, not blanked
    # a long history (20000 points, as an ~3 min Speak leaves) with one spike: the spike is still drawn
    snap = playback.session.snapshot()
    t = np.linspace(0, 200, 20000)
    ms = np.full(20000, 300.0)
    ms[12345] = 2500.0
    plots.buffer.update_from(dataclasses.replace(snap, history_t=t, history_ms=ms))
    pixels = plots.buffer.getPlotItem().getViewBox().width()
    xs, ys = plots.buffer.curve.getData()
    assert len(xs) <= 2 * pixels + 1, (len(xs), pixels)
    assert ys.max() == 2500.0 and xs[-1] == t[-1]


async def test_frames_that_only_move_the_curves_skip_pyqtgraphs_prepare_for_paint(qtbot, window):
    """pyqtgraph runs its prepare-for-paint slots (the view's transform, each label's) before every paint; the
    plots run them only after a change of range, size or labels. The labels still land where they belong."""
    plots = window.plots
    counters = {}
    for name, plot in (("waveform", plots.waveform), ("buffer", plots.buffer)):
        prepares = []
        plot.scene().sigPrepareForPaint.connect(lambda p=prepares: p.append(1))
        counters[name] = (_PaintCounter(plot.viewport()), prepares)
    playback = await speak_and_wait(qtbot, window)
    for name, (paints, prepares) in counters.items():
        assert paints.paints > 20, name  # it was drawn while speaking
        assert len(prepares) < paints.paints / 3, (name, len(prepares), paints.paints)
    # the labels shown took their transform (upright, one text pixel per screen pixel) and lie in the plot
    assert playback.session.metrics is not None
    buffer = plots.buffer
    area = buffer.getPlotItem().getViewBox().sceneBoundingRect()
    shown = {name: label for name, label in buffer.labels.items() if label.isVisible()}
    assert shown
    for name, label in shown.items():
        rect, text = label.sceneBoundingRect(), label.textItem.boundingRect()
        assert area.contains(rect), name
        assert abs(rect.width() - text.width()) < 1 and abs(rect.height() - text.height()) < 1, (name, rect, text)
