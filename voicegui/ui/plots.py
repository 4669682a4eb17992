"""Live plots of one Speak: the waveform of what was played and the buffer fill over time (pyqtgraph).

Threads: GUI thread only. A QTimer (~30 Hz) asks a source callable for the current session, takes its
``Snapshot`` (a copy the session makes under its own lock) and redraws; nothing here touches audio objects,
and no audio work happens here. Hidden plots are skipped, and a finished session is drawn once, not 30
times a second.

Quiet start: the GUI thread is also the asyncio loop's thread (qasync), so a repaint (several ms with
software rendering) delays the handling of whatever network chunk arrives meanwhile. In a Speak's first
moments that matters: the auto prebuffer judges the stream's speed from when its first chunks arrive, and
chunks held up behind a repaint look like a slower stream, so playback started later (measured: mp3 at 2x
real time was bimodal in the window, +19 to +41 ms on the median against the CLI). So nothing is redrawn
until the response's first byte is in and for ``QUIET_START_S`` after it, unless playback has started
already; an empty plot has nothing to show in that time anyway, and a long prebuffer is still drawn filling up.

CPU while speaking (the window's cost over the CLI's is almost all drawing, software raster): a snapshot
that shows nothing new is not drawn at all; the curves are ``plot_items.Polyline`` items (fixed bounds, one
``drawPolyline``, no PlotDataItem pipeline) with at most a min and a max per pixel column; the buffer curve,
which only grows at its right end, repaints only that strip; axes, legend and line labels are cached as
pixmaps, and the axis ranges move in steps, so text is laid out again only when it changes; pens of width 1,
no antialiasing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QPainter, QResizeEvent
from PySide6.QtWidgets import QGraphicsItem, QHBoxLayout, QWidget

from voicegui.stream.session import Snapshot, SpeakSession
from voicegui.ui.plot_items import Polyline, peak_columns

SessionSource = Callable[[], "SpeakSession | None"]

FAST_PERIOD_MS = 33  # ~30 Hz: smooth enough to look live, cheap enough to leave the loop idle
WAVEFORM_WINDOW_S = 2.0
MIN_COLUMNS, MAX_COLUMNS = 50, 2000  # the curves' min/max columns: one per pixel of the plot, within these
# The buffer plot's time axis grows in these steps (x 10^n): an axis redraw costs ~20 ms (software raster), so
# not every second, yet a Speak fills at least 2/3 of the width.
_X_STEPS = (1, 1.5, 2, 3, 4, 5, 6, 8)

_WAVE_PEN = pg.mkPen("#4fc3f7", width=1)
_BUFFER_PEN = pg.mkPen("#81c784", width=1)
_PREBUFFER_PEN = pg.mkPen("#ffb74d", width=1, style=Qt.PenStyle.DashLine)
_MAX_PEN = pg.mkPen("#e57373", width=1, style=Qt.PenStyle.DashLine)
_PLAY_PEN = pg.mkPen("#ffffff", width=1, style=Qt.PenStyle.DotLine)


QUIET_START_S = 0.25


def in_quiet_start(session: SpeakSession) -> bool:
    """True while a Speak is still deciding when to start playing: no response yet, or buffering in the first
    QUIET_START_S after its first byte (see the module docstring)."""
    if session.state == "starting":
        return True
    if session.state != "buffering":
        return False
    first_byte = session.fetch_marks.first_byte
    return first_byte is None or time.monotonic() - first_byte < QUIET_START_S


def _step_up(value: float, steps: tuple[float, ...] = (1, 2, 5)) -> float:
    """The next of `steps` x 10^n at or above `value` (an axis end that changes only now and then)."""
    if value <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(value))
    for mult in (*steps, 10):
        if value <= mult * base:
            return float(mult * base)
    return float(10 * base)


def _let_title_shrink(item: pg.PlotItem) -> None:
    """Let a narrow plot cut its title instead of growing past its widget.

    pyqtgraph's LabelItem makes its text's width its minimum width (again on every resize), so in a small
    window the waveform's layout grew wider than the widget and its right end, "0 s ago", was out of view.
    """
    label = item.titleLabel
    update_min = label.updateMin

    def update_min_height_only() -> None:
        update_min()
        label.setMinimumWidth(0)

    label.updateMin = update_min_height_only
    update_min_height_only()


def _quiet_plot(widget: pg.PlotWidget, title: str) -> pg.PlotItem:
    """A plot that does not react to the mouse (it is a live readout, not an explorer)."""
    item = widget.getPlotItem()
    item.setTitle(title, size="9pt")
    _let_title_shrink(item)
    item.setMenuEnabled(False)
    item.hideButtons()
    item.setMouseEnabled(x=False, y=False)
    # Let the last tick label ("0" at the right edge) show instead of being dropped for overflowing.
    item.getAxis("bottom").setStyle(hideOverlappingLabels=False)
    item.layout.setContentsMargins(2, 2, 18, 2)  # room on the right for that label
    # Axes (tick text) are the costliest part of a frame: replaying their QPicture took ~2 ms per axis per
    # frame (profiled). Cached as pixmaps, they are redrawn only when their range changes, which the plots
    # keep rare. The grid is not theirs (see GridPlot), so they do not overlap the curve and are not even
    # blitted again when only the curve moves.
    for name in ("left", "bottom"):
        item.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return item


class GridPlot(pg.PlotWidget):
    """A PlotWidget whose grid is drawn in the view's cached background, not by its axes.

    pyqtgraph's grid belongs to the axis items, which makes each axis as large as the plot: every frame of the
    curve then repainted both axes too (Python calls per item, a full-size pixmap blend each). Qt caches the
    background (pyqtgraph sets CacheBackground) and redraws it only after a resize or a range change.
    """

    GRID_ALPHA = (48, 18)  # major, minor lines

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        vb = self.getPlotItem().getViewBox()
        vb.sigRangeChanged.connect(self._grid_moved)
        vb.sigResized.connect(self._grid_moved)

    def _grid_moved(self, *_args: object) -> None:
        self.resetCachedContent()
        self.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:  # Qt's name
        super().drawBackground(painter, rect)
        item = getattr(self, "plotItem", None)  # None while PlotWidget.__init__ runs
        if item is None:
            return
        vb = item.getViewBox()
        area = vb.sceneBoundingRect()
        if area.width() < 2 or area.height() < 2:
            return
        (x0, x1), (y0, y1) = vb.viewRange()
        painter.save()
        painter.setClipRect(area)
        for name, lo, hi, size in (("bottom", x0, x1, area.width()), ("left", y0, y1, area.height())):
            for level, (_spacing, values) in enumerate(item.getAxis(name).tickValues(lo, hi, size)[:2]):
                painter.setPen(pg.mkPen(255, 255, 255, self.GRID_ALPHA[level]))
                for value in values:
                    at = vb.mapViewToScene(QPointF(value, value))
                    if name == "bottom":
                        painter.drawLine(QLineF(at.x(), area.top(), at.x(), area.bottom()))
                    else:
                        painter.drawLine(QLineF(area.left(), at.y(), area.right(), at.y()))
        painter.restore()


class WaveformPlot(GridPlot):
    """The last ~2 s of played samples, scrolling right to left: per pixel column its min and max."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        item = _quiet_plot(self, "Played waveform (last 2 s)")
        item.setXRange(-WAVEFORM_WINDOW_S, 0, padding=0)
        item.setYRange(-1, 1, padding=0.02)
        item.getAxis("bottom").setLabel("seconds ago")
        self.setMinimumHeight(120)
        self._item = item
        self._columns = 0
        self._samples = np.zeros(0, dtype=np.float32)
        self._rate = 0
        self._last: Snapshot | None = None  # redrawn on a resize: a finished Speak gets no new snapshot
        # what the curve shows now (session, rate, columns; samples): a snapshot that shows the same is skipped
        self._drawn: tuple | None = None
        self._drawn_samples = np.zeros(0, dtype=np.float32)
        self.curve = Polyline(_WAVE_PEN)
        self.curve.set_bounds(QRectF(-WAVEFORM_WINDOW_S, -1.05, WAVEFORM_WINDOW_S, 2.1))
        item.addItem(self.curve, ignoreBounds=True)
        self.updates = 0  # redraws, for tests and diagnostics
        self.peak = 0.0  # largest |sample| in the last drawn window
        item.getViewBox().sigResized.connect(self._fit_columns)
        self._fit_columns()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # The x range is fixed (-2 .. 0 s), so the ticks can be too: every 0.5 s where there is room, every
        # second in a narrow plot, where 0.5 s labels ran into each other ("-1.5-1.0-0.5").
        item = getattr(self, "plotItem", None)  # None while PlotWidget.__init__ itself resizes
        if item is not None:
            step = 0.5 if self.width() >= 260 else 1.0
            item.getAxis("bottom").setTickSpacing(step, step / 5)

    def columns(self) -> int:
        """Pixel columns drawn (a min and a max each)."""
        return self._columns

    def _fit_columns(self, *_args: object) -> None:
        """One min/max pair per pixel column of the plot: more points would draw the same pixels."""
        cols = max(MIN_COLUMNS, min(int(self._item.getViewBox().width()), MAX_COLUMNS))
        if cols == self._columns:
            return
        self._columns = cols
        self._x = np.repeat(np.linspace(-WAVEFORM_WINDOW_S, 0, cols), 2)
        self._y = np.zeros(2 * cols)
        self._mins = np.zeros(cols, dtype=np.float32)
        self._maxs = np.zeros(cols, dtype=np.float32)
        self._rate = 0  # the sample buffer is a whole number of samples per column: made again
        self._drawn = None
        if self._last is not None:
            self.update_from(self._last)
        else:
            self.curve.set_points(self._x, self._y)

    def _ensure_buffer(self, rate: int) -> None:
        if rate != self._rate:
            per_col = max(1, int(WAVEFORM_WINDOW_S * rate) // self._columns)
            self._samples = np.zeros(per_col * self._columns, dtype=np.float32)
            self._rate = rate

    def update_from(self, snap: Snapshot) -> None:
        self._last = snap
        rate = snap.sample_rate or 24000
        key = (snap.started, rate, self._columns)
        if key == self._drawn and np.array_equal(snap.waveform, self._drawn_samples):
            return  # nothing was played since the last frame: the same picture (comparing costs ~30 us)
        self._drawn = key
        self._drawn_samples = snap.waveform
        self._ensure_buffer(rate)
        buf = self._samples
        recent = snap.waveform[-len(buf):]
        pad = len(buf) - len(recent)
        buf[:pad] = 0.0  # fewer samples than the window: the left part is silence, the audio scrolls in
        buf[pad:] = recent
        blocks = buf.reshape(self._columns, -1)
        np.min(blocks, axis=1, out=self._mins)
        np.max(blocks, axis=1, out=self._maxs)
        self._y[0::2] = self._mins
        self._y[1::2] = self._maxs
        self.curve.set_points(self._x, self._y)
        self.peak = float(max(self._maxs.max(initial=0.0), -self._mins.min(initial=0.0)))
        self.updates += 1

    def clear_plot(self) -> None:
        self._last = None
        self._drawn = None
        self._y[:] = 0.0
        self.curve.set_points(self._x, self._y)
        self.peak = 0.0


class BufferPlot(GridPlot):
    """Milliseconds of audio buffered over time, with the prebuffer threshold, the max buffer, the moment
    playback started and every underrun."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ranges: tuple[float, float] | None = None  # (y top, x end) last set
        item = _quiet_plot(self, "Buffer (ms)")
        item.getAxis("bottom").setLabel("s since Speak")
        self.setMinimumHeight(120)
        self._item = item
        # The history can hold thousands of points: drawn with at most a min and a max per pixel column.
        self.curve = Polyline(_BUFFER_PEN)
        item.addItem(self.curve, ignoreBounds=True)
        self._drawn: tuple | None = None  # what the plot shows now: a snapshot that shows the same is skipped
        self._drawn_end: tuple[float, tuple] | None = None  # (last point's time, what must match to draw only past it)
        self._underruns_drawn = 0
        self.prebuffer_line = pg.InfiniteLine(angle=0, pen=_PREBUFFER_PEN, movable=False,
                                              label="prebuffer", labelOpts={"position": 0.08, "color": "#ffb74d",
                                                                          "anchors": [(0, 1), (0, 1)]})
        self.max_line = pg.InfiniteLine(angle=0, pen=_MAX_PEN, movable=False,
                                        label="max buffer", labelOpts={"position": 0.98, "color": "#e57373",
                                                                    "anchors": [(1, 1), (1, 1)]})
        self.play_line = pg.InfiniteLine(angle=90, pen=_PLAY_PEN, movable=False,
                                         label="playing", labelOpts={"position": 0.9, "color": "#ffffff"})
        self.underruns = pg.ScatterPlotItem(symbol="t", size=10, pen=None, brush=pg.mkBrush("#ef5350"))
        for obj in (self.prebuffer_line, self.max_line, self.play_line, self.underruns):
            item.addItem(obj, ignoreBounds=True)
        # Text and markers are repainted whenever the curve under them is: as cached pixmaps that costs a copy,
        # not a text layout (profiled: the legend and labels were a large part of a frame).
        for obj in (self.prebuffer_line.label, self.max_line.label, self.play_line.label, self.underruns):
            obj.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The numbers go in a small legend, not the title: a title long enough to hold them was cut off at
        # the default window size. The samples are stand-ins drawn with the markers' pens (a legend cannot
        # draw an InfiniteLine); they are never added to the plot.
        self.legend = pg.LegendItem(offset=(-4, 4), labelTextSize="8pt", labelTextColor="#dddddd",
                                    brush=pg.mkBrush(0, 0, 0, 170), verSpacing=-6)
        self.legend.setParentItem(item.getViewBox())
        self.legend.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._legend_samples = {
            "prebuffer": pg.PlotDataItem(pen=_PREBUFFER_PEN),
            "max": pg.PlotDataItem(pen=_MAX_PEN),
            "underruns": pg.PlotDataItem(pen=None, symbol="t", symbolSize=8, symbolPen=None,
                                         symbolBrush=pg.mkBrush("#ef5350")),
        }
        self._legend_text: dict[str, str] = {}
        for key, sample in self._legend_samples.items():
            self.legend.addItem(sample, key)
        self.legend.hide()  # nothing to say before the first Speak
        # A finished Speak is not redrawn, so a resize must refit the legend itself (it was left cut off at
        # the left edge when the window was made small after a Speak).
        item.getViewBox().sigResized.connect(self._fit_legend)
        item.setXRange(0, 2.0, padding=0)
        item.setYRange(0, 500, padding=0)
        self._show_markers(False)
        self.updates = 0
        self.points = 0  # history points in the last drawn snapshot

    def _show_markers(self, visible: bool) -> None:
        """Threshold lines mean nothing before the first Speak (and the idle axis would put them at 0)."""
        self.prebuffer_line.setVisible(visible)
        self.max_line.setVisible(visible)
        if not visible:
            self.play_line.hide()

    def update_from(self, snap: Snapshot) -> None:
        t, ms = snap.history_t, snap.history_ms
        t_end = float(t[-1]) if len(t) else 0.0
        columns = max(MIN_COLUMNS, min(int(self._item.getViewBox().width()), MAX_COLUMNS))
        key = (snap.started, len(t), t_end, snap.prebuffer_ms, snap.max_buffer_ms, snap.play_started_s,
               snap.underrun_episodes, columns)
        if key == self._drawn:
            return  # nothing new: the same picture
        self._drawn = key
        self._show_markers(True)
        self.points = len(t)
        top_data = float(ms.max()) if len(ms) else 0.0
        self.prebuffer_line.setPos(snap.prebuffer_ms)
        self.max_line.setPos(snap.max_buffer_ms)
        # Show the max-buffer line only once the buffer gets anywhere near it; a 10 s line would flatten a
        # buffer that hovers around a 100 ms prebuffer into the axis. The title always names both values.
        top = max(top_data, snap.prebuffer_ms, 100.0) * 1.2
        if top >= snap.max_buffer_ms * 0.5:
            top = snap.max_buffer_ms * 1.08
        else:
            top = _step_up(top)  # ranges move in steps: every change redraws the (cached) axes
        x_end = max(2.0, _step_up(t_end * 1.05, _X_STEPS))
        if (top, x_end) != self._ranges:
            self._ranges = (top, x_end)
            self._item.setYRange(0, top, padding=0)
            self._item.setXRange(0, x_end, padding=0)
            self.curve.set_bounds(QRectF(0, 0, x_end, top))
        xs, ys = peak_columns(t, ms, x_end, columns)
        # The curve only grows at its right end: unless the range, the width or the decimation changed, only
        # the strip from the previous last point on is repainted (the rest of the plot is left as it is).
        shape = (snap.started, self._ranges, columns, len(xs) == len(t))
        dirty = None
        if self._drawn_end is not None and self._drawn_end[1] == shape:
            column_s = x_end / columns
            start = self._drawn_end[0] - 2 * column_s
            dirty = QRectF(start, 0, x_end - start, top)
        self.curve.set_points(xs, ys, dirty)
        self._drawn_end = (t_end, shape)
        if snap.play_started_s is not None:
            self.play_line.setPos(snap.play_started_s)
            self.play_line.show()
        else:
            self.play_line.hide()
        if len(snap.underrun_t) != self._underruns_drawn:
            self.underruns.setData(x=snap.underrun_t, y=np.zeros(len(snap.underrun_t)))
            self._underruns_drawn = len(snap.underrun_t)
        self._set_legend(prebuffer=f"prebuffer {snap.prebuffer_ms:.0f} ms", max=f"max {snap.max_buffer_ms / 1000:g} s",
                         underruns=f"underruns {snap.underrun_episodes}")
        self.updates += 1

    def legend_text(self) -> dict[str, str]:
        """What the legend says now (for tests): key -> text."""
        return dict(self._legend_text)

    def legend_fits(self) -> bool:
        """Whether the plot is wide enough for the legend (it would cover the curve and be cut at the left
        edge otherwise)."""
        return self._item.getViewBox().width() - self.legend.boundingRect().width() > 60

    def _fit_legend(self, *_args: object) -> None:
        self.legend.setVisible(bool(self._legend_text) and self.legend_fits())

    def _set_legend(self, **texts: str) -> None:
        labels = {sample.item: label for sample, label in self.legend.items}  # ItemSample wraps our item
        for key, text in texts.items():
            if self._legend_text.get(key) != text:  # relayout only when a number changed, not at 30 Hz
                labels[self._legend_samples[key]].setText(text)
                self._legend_text[key] = text
        self._fit_legend()

    def clear_plot(self) -> None:
        self._ranges = None
        self._drawn = None
        self._drawn_end = None
        self.curve.set_points(np.zeros(0), np.zeros(0))
        self.underruns.setData(x=[], y=[])
        self._underruns_drawn = 0
        self.play_line.hide()
        self.points = 0


class LivePlots(QWidget):
    """Waveform and buffer plots side by side, redrawn from the snapshot of ``source()`` (the current
    session) by a ~30 Hz timer."""

    def __init__(self, source: SessionSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self.waveform = WaveformPlot(self)
        self.buffer = BufferPlot(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.waveform, 1)
        layout.addWidget(self.buffer, 1)
        self._drawn_final: SpeakSession | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(FAST_PERIOD_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def reset(self) -> None:
        """A new Speak: clear both plots so the old utterance does not linger."""
        self._drawn_final = None
        self.waveform.clear_plot()
        self.buffer.clear_plot()

    def refresh(self) -> None:
        if not self.isVisible():
            return
        session = self._source()
        if session is None or session is self._drawn_final or in_quiet_start(session):
            # nothing to show, this session's final state is already drawn (nothing moves any more), or its
            # start is not to be disturbed
            return
        # metrics appear last, after the final samples are drained: read it before taking the snapshot, so
        # a snapshot taken after it is known to be complete.
        final = session.metrics is not None
        snap = session.snapshot()
        if final:
            self._drawn_final = session
        if self.waveform.isVisible():
            self.waveform.update_from(snap)
        if self.buffer.isVisible():
            self.buffer.update_from(snap)
