"""The parts of the plots that need no Speak: label placement never overlaps, the gate's step line, the gate in
force, and what a frame repaints and rasterises (offscreen plots fed made-up snapshots)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, QSizeF
from PySide6.QtWidgets import QApplication, QGraphicsItem

from voicegui.ui.plot_items import Spans, place_labels
from voicegui.ui.plots import gate_in_force, step_points, underrun_spans


def test_labels_take_the_first_free_place_and_are_dropped_when_there_is_none():
    area = QRectF(0, 0, 100, 40)
    size = QSizeF(40, 14)
    same = [QPointF(10, 10), QPointF(10, 25), QPointF(55, 10)]
    corners = place_labels(area, [(size, same)] * 4)
    assert corners[:3] == same  # each next label moves to its next candidate
    assert corners[3] is None  # no room left: hidden, not drawn over another
    rects = [QRectF(c, size) for c in corners if c is not None]
    assert not any(a.intersects(b) for a, b in itertools.combinations(rects, 2))
    assert place_labels(area, [(size, [QPointF(70, 0)])]) == [None]  # would stick out of the plot


def test_the_gate_is_a_step_line_through_its_changes_only():
    t = np.array([0.0, 0.01, 0.02, 0.03, 0.04])
    g = np.array([300.0, 300.0, 500.0, 500.0, 450.0])
    xs, ys = step_points(t, g)
    assert list(zip(xs, ys, strict=True)) == [(0.0, 300), (0.02, 300), (0.02, 500), (0.04, 500), (0.04, 450),
                                              (0.04, 450)]
    assert gate_in_force(t, g, 0.025, -1) == 500  # the last one recorded at or before that time
    assert gate_in_force(t, g, -1.0, -1) == 300 and gate_in_force(t[:0], g[:0], 0.0, -1) == -1


class _PaintRegions(QObject):
    """The rectangles of the paint events a widget (a plot's viewport) receives: what Qt repaints."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.rects: list = []
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # Qt's name
        if event.type() == QEvent.Type.Paint:
            self.rects.append(event.rect())
        return False


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def test_a_growing_underrun_span_repaints_only_its_own_strip(qtbot):
    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(400, 200)
    plot.show()
    plot.setXRange(0, 100, padding=0)
    plot.setYRange(0, 10, padding=0)
    spans = Spans(pg.mkBrush("r"), pg.mkPen("r"))
    spans.set_bounds(QRectF(0, 0, 100, 10))
    plot.addItem(spans, ignoreBounds=True)
    for end in (20.0, 21.0):  # (the first frames after show() repaint whatever they like)
        spans.set_spans(np.array([10.0]), np.array([end]))
        _settle()
    regions = _PaintRegions(plot.viewport())
    vb = plot.getPlotItem().getViewBox()

    def px(x: float) -> float:  # a data x in the viewport's pixels
        return plot.mapFromScene(vb.mapViewToScene(QPointF(x, 0))).x()

    spans.set_spans(np.array([10.0]), np.array([25.0]))  # the underrun goes on: 21 -> 25 is repainted
    _settle()
    assert regions.rects, "the grown span was not repainted"
    assert all(px(18) <= r.left() and r.right() <= px(28) for r in regions.rects), (regions.rects, px(21), px(25))
    regions.rects.clear()
    spans.set_spans(np.array([10.0, 60.0]), np.array([25.0, 61.0]))  # a new one: the old one is not repainted
    _settle()
    assert regions.rects and all(r.left() >= px(57) for r in regions.rects), (regions.rects, px(60))
    assert [list(a) for a in spans.getData()] == [[10.0, 60.0], [25.0, 61.0]]


def test_underrun_spans_end_where_the_output_plays_again():
    from voicegui.stream.session import Snapshot

    t = np.arange(100, 200) * 0.01  # the history kept starts at 1.0 s (older points were dropped)
    playing = np.ones(len(t))
    playing[(t >= 1.2) & (t < 1.35)] = 0  # an underrun over at 1.35
    playing[t >= 1.9] = 0  # one still going on at the end
    snap = Snapshot(state="playing", started=0.0, sample_rate=24000, buffered_ms=0.0, prebuffer_ms=100.0,
                    max_buffer_ms=10_000.0, history_t=t, history_ms=np.zeros(len(t)), play_started_s=0.2,
                    underrun_t=np.array([0.5, 1.195, 1.895]), waveform=np.zeros(0, dtype=np.float32),
                    frames_played=0, bytes_received=0, audio_received_s=0.0, underrun_episodes=3, metrics=None,
                    history_playing=playing, history_gate_ms=np.full(len(t), 100.0))
    starts, ends = underrun_spans(snap)
    assert list(starts) == [0.5, 1.195, 1.895]
    assert ends[0] == 0.5  # before the history kept: its end is unknown, it is not stretched to a later resume
    assert ends[1] == pytest.approx(1.35) and ends[2] == pytest.approx(t[-1])


def _history_snapshot(t_end: float):
    """A playing Speak's snapshot with a buffer-level point every 10 ms up to `t_end` (seconds)."""
    from voicegui.stream.session import Snapshot

    t = np.arange(0.0, t_end + 1e-9, 0.01)
    return Snapshot(state="playing", started=0.0, sample_rate=24000, buffered_ms=0.0, prebuffer_ms=100.0,
                    max_buffer_ms=10_000.0, history_t=t, history_ms=100 + 50 * np.sin(t * 7), play_started_s=0.2,
                    underrun_t=np.zeros(0), waveform=np.zeros(0, dtype=np.float32), frames_played=0,
                    bytes_received=0, audio_received_s=0.0, underrun_episodes=0, metrics=None,
                    history_playing=np.ones(len(t)), history_gate_ms=np.full(len(t), 100.0))


def test_a_growing_buffer_curve_repaints_only_the_strip_it_grew_by(qtbot):
    from voicegui.ui.plots import BufferPlot

    plot = BufferPlot()
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    for t_end in (2.0, 2.1, 2.2):  # the axis runs to 3 s (it moves in steps); the first frames settle the layout
        plot.update_from(_history_snapshot(t_end))
        _settle()
    regions = _PaintRegions(plot.viewport())
    vb = plot.getPlotItem().getViewBox()

    def px(x: float) -> float:  # a data x in the viewport's pixels
        return plot.mapFromScene(vb.mapViewToScene(QPointF(x, 0))).x()

    plot.update_from(_history_snapshot(2.3))
    _settle()
    assert vb.viewRange()[0] == [0, 3.0]
    assert regions.rects, "the grown curve was not repainted"
    # from a little before the old end to a little past the new one: not the empty plot up to its right edge
    assert all(px(2.15) <= r.left() and r.right() <= px(2.4) for r in regions.rects), (regions.rects, px(2.3))
    xs, _ys = plot.curve.getData()
    assert xs[-1] == pytest.approx(2.3)


def test_the_waveform_line_runs_up_one_column_and_down_the_next(qtbot):
    """Each pixel column still spans its samples' min to max, but neighbouring columns join top to top and
    bottom to bottom: no stroke across the whole range between two columns (the rasteriser's work)."""
    from voicegui.ui.plots import WaveformPlot

    plot = WaveformPlot()
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    plot.show()
    _settle()
    rate = 24000
    t = np.arange(3 * rate) / rate
    wave = (0.8 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    plot.update_from(dataclasses.replace(_history_snapshot(3.0), waveform=wave))
    xs, ys = plot.curve.getData()
    columns = plot.columns()
    assert len(xs) == 2 * columns
    per_column = int(2 * rate) // columns  # the last 2 s, a whole number of samples per column
    blocks = wave[-per_column * columns:].reshape(columns, per_column)
    spans = np.sort(ys.reshape(columns, 2), axis=1)
    assert np.allclose(spans[:, 0], blocks.min(axis=1)) and np.allclose(spans[:, 1], blocks.max(axis=1))
    within = np.abs(np.diff(ys)[0::2]).sum()  # each column's own stroke, min to max
    between = np.abs(np.diff(ys)[1::2]).sum()  # the joins from one column to the next
    assert within > 100 and between < 0.1 * within, (within, between)


def test_the_plots_containers_are_flagged_as_drawing_nothing_and_draw_nothing(qtbot):
    """The plot item, its view box and its title are flagged ItemHasNoContents (Qt then calls neither their Python
    bounds nor their paint at each frame): the plots look the same pixel for pixel without the flag."""
    from voicegui.ui.plots import BufferPlot, WaveformPlot

    flag = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    snap = dataclasses.replace(_history_snapshot(2.5), waveform=np.sin(np.arange(72000) * 0.05).astype(np.float32))
    for plot in (WaveformPlot(), BufferPlot()):
        qtbot.addWidget(plot)
        plot.resize(600, 300)
        plot.show()
        plot.update_from(snap)
        _settle()
        item = plot.getPlotItem()
        containers = (item, item.getViewBox(), item.titleLabel)
        assert all(c.flags() & flag for c in containers)
        flagged = plot.grab().toImage()
        for c in containers:
            c.setFlag(flag, False)
        unflagged = plot.grab().toImage()
        for c in containers:
            c.setFlag(flag, True)
        assert flagged == unflagged
