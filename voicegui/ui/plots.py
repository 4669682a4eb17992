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
and the prebuffer gate's step line, which only grow at their right end, repaint only that strip; axes and
labels are cached as pixmaps, and the axis ranges move in steps, so text is laid out again only when it
changes; the labels are placed again only when a text, an anchor or the geometry changed; pens of width 1,
no antialiasing; pyqtgraph's prepare-for-paint slots run only after a change of range, size or labels, not
before every paint (``GridPlot.paintEvent``); the playback-start marker is a plain Qt item
(``plot_items.Marker``), with no Python bounds to compute at each paint.

Made for tuning: the buffer plot's legend is a label under the plots (inside, it covered the curve and the
labels), the labels inside are placed so that none covers another (``plot_items.place_labels``), each underrun
is a shaded span with its length, the gate the output waited for is drawn as it was at each moment (the
session records it with each level point) with the one that started playback marked, and "Fixed axes" keeps
the buffer plot's range from one Speak to the next.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, QSizeF, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent, QTextDocumentFragment
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QGraphicsView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QWidget,
)

from voicegui.stream.session import Snapshot, SpeakSession
from voicegui.ui import plot_theme
from voicegui.ui.plot_items import Marker, Polyline, Spans, peak_columns, place_labels
from voicegui.ui.pyqtgraph_import import pg

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
MAX_SPAN_LABELS = 24  # underrun spans labelled with their length (the longest ones); more would not fit


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
    # The containers draw nothing themselves (the view box's border pen is NoPen; the plot item and the title
    # only hold other items): flagged so, Qt calls neither their Python bounds nor their paint at each frame.
    for container in (item, item.getViewBox(), item.titleLabel):
        container.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
    return item


class GridPlot(pg.PlotWidget):
    """A PlotWidget whose grid is drawn in the view's cached background, not by its axes.

    pyqtgraph's grid belongs to the axis items, which makes each axis as large as the plot: every frame of the
    curve then repainted both axes too (Python calls per item, a full-size pixmap blend each). Qt caches the
    background (pyqtgraph sets CacheBackground) and redraws it only after a resize or a range change.
    """

    GRID_ALPHA = (48, 18)  # major, minor lines
    grid_rgb = (255, 255, 255)  # the theme's (ui/plot_theme.py)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._prepare_pending = True
        vb = self.getPlotItem().getViewBox()
        vb.sigRangeChanged.connect(self._grid_moved)
        vb.sigResized.connect(self._grid_moved)
        for changed in (vb.sigRangeChanged, vb.sigResized, vb.sigStateChanged, vb.sigTransformChanged):
            changed.connect(self.prepare_paint)

    def prepare_paint(self, *_args: object) -> None:
        """Have the next paint run pyqtgraph's prepare-for-paint (see paintEvent): the view's range, size or
        state changed, or a text label was shown."""
        self._prepare_pending = True

    def paintEvent(self, event: QPaintEvent) -> None:  # Qt's name
        """pyqtgraph's GraphicsView emits the scene's sigPrepareForPaint before every paint: the view box
        then applies a changed range to its transform and each text label checks its own transform (Python
        slots, ~0.1 ms a frame, profiled). Nothing of that changes while only the curves move (the axes do
        not auto-range), so it runs only after a change that needs it."""
        if getattr(self, "_prepare_pending", True):  # True while PlotWidget.__init__ runs
            self._prepare_pending = False
            self.scene().prepareForPaint()
        QGraphicsView.paintEvent(self, event)

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
                painter.setPen(pg.mkPen(*self.grid_rgb, self.GRID_ALPHA[level]))
                for value in values:
                    at = vb.mapViewToScene(QPointF(value, value))
                    if name == "bottom":
                        painter.drawLine(QLineF(at.x(), area.top(), at.x(), area.bottom()))
                    else:
                        painter.drawLine(QLineF(area.left(), at.y(), area.right(), at.y()))
        painter.restore()


class WaveformPlot(GridPlot):
    """The last ~2 s of played samples, scrolling right to left: per pixel column its min and max, drawn as one
    line that goes up one column and down the next."""

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
        # Up one column and down the next: neighbouring columns join at their tops, then at their bottoms (short
        # steps). Min then max in every column drew a stroke across the whole range from each column's top to
        # the next one's bottom: the same picture with about twice the pixels for the rasteriser to fill.
        pairs = self._y.reshape(-1, 2)
        pairs[0::2, 0], pairs[0::2, 1] = self._mins[0::2], self._maxs[0::2]
        pairs[1::2, 0], pairs[1::2, 1] = self._maxs[1::2], self._mins[1::2]
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
    """Milliseconds of audio buffered over time, with the prebuffer gate in force at each moment (a step line),
    where playback started and at which gate, the max buffer, and each underrun as a shaded span with its length.

    Nothing is drawn over anything else: the numbers are in ``legend``, a label outside the plot (its parent
    lays it out), and the labels inside the plot are placed by ``plot_items.place_labels`` so that none covers
    another; one that finds no free place is hidden (its number is still in the legend).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ranges: tuple[float, float] | None = None  # (y top, x end) last set
        self.fixed_axes = False  # the axes keep their range from one Speak to the next (set_fixed_axes)
        self.colors = plot_theme.colors("dark")  # the labels' and legend's; LivePlots follows the theme
        self._kept_x_end = 0.0  # with fixed axes: the longest time axis so far
        self._last: Snapshot | None = None  # drawn again on a resize or an axes change
        item = _quiet_plot(self, "Buffer (ms)")
        item.getAxis("bottom").setLabel("s since Speak")
        self.setMinimumHeight(120)
        self._item = item
        vb = item.getViewBox()
        self.underruns = Spans(pg.mkBrush(239, 83, 80, 70), pg.mkPen(239, 83, 80, 160, width=1))
        self.underruns.setZValue(-5)  # under the curves and the labels
        item.addItem(self.underruns, ignoreBounds=True)
        # The history can hold thousands of points: drawn with at most a min and a max per pixel column.
        self.curve = Polyline(_BUFFER_PEN)
        item.addItem(self.curve, ignoreBounds=True)
        self.gate_curve = Polyline(_PREBUFFER_PEN)  # the gate in force over time: a step line
        item.addItem(self.gate_curve, ignoreBounds=True)
        self._drawn: tuple | None = None  # what the plot shows now: a snapshot that shows the same is skipped
        self._drawn_end: tuple[float, tuple] | None = None  # (last point's time, what must match to draw only past it)
        self.max_line = pg.InfiniteLine(angle=0, pen=_MAX_PEN, movable=False)
        self.play_line = pg.InfiniteLine(angle=90, pen=_PLAY_PEN, movable=False)
        self.start_marker = Marker(7, pg.mkPen("#ffb74d"), pg.mkBrush("#000"))
        for obj in (self.max_line, self.play_line, self.start_marker):
            item.addItem(obj, ignoreBounds=True)
        # Labels are repainted whenever the curve under them is: as cached pixmaps that costs a copy, not a text
        # layout (profiled: text was a large part of a frame). Their text changes only when a number does.
        self.labels: dict[str, pg.TextItem] = {
            "start": self._label("#ffb74d"), "max": self._label("#e57373"), "gate": self._label("#ffb74d")}
        self.span_labels: list[pg.TextItem] = []  # one per underrun span, made as needed
        self._label_key: tuple | None = None
        self._label_wanted: dict[str, tuple[str, QPointF | None]] = {}
        self._spans: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        self._open_span = False  # the last span is an underrun still going on
        self.legend = LegendLabel()
        self._legend_text: dict[str, str] = {}
        self.legend.hide()  # nothing to say before the first Speak
        vb.sigResized.connect(self._resized)
        item.setXRange(0, 2.0, padding=0)
        item.setYRange(0, 500, padding=0)
        self._show_markers(False)
        self.updates = 0
        self.points = 0  # history points in the last drawn snapshot

    def _label(self, color: str) -> pg.TextItem:
        label = pg.TextItem("", color=color, anchor=(0, 0), fill=pg.mkBrush(*self.colors.label_fill))
        label.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        label.setZValue(10)
        label.hide()
        self._item.addItem(label, ignoreBounds=True)
        return label

    def _show_markers(self, visible: bool) -> None:
        """Threshold lines mean nothing before the first Speak (and the idle axis would put them at 0)."""
        self.max_line.setVisible(visible)
        if not visible:
            self.play_line.hide()
            self.start_marker.set_at(None)
            for label in (*self.labels.values(), *self.span_labels):
                label.hide()

    def set_fixed_axes(self, fixed: bool) -> None:
        """Fixed: the y axis runs to the max buffer and the time axis never shrinks, from one Speak to the next
        (runs can be compared by eye); else both fit the current Speak."""
        self.fixed_axes = fixed
        if not fixed:
            self._kept_x_end = 0.0
        self._drawn = None
        self._drawn_end = None
        if self._last is not None:
            self.update_from(self._last)

    def _axes(self, snap: Snapshot, top_data: float, t_end: float) -> tuple[float, float]:
        x_end = max(2.0, _step_up(t_end * 1.05, _X_STEPS))
        if self.fixed_axes:
            self._kept_x_end = max(self._kept_x_end, x_end)
            return snap.max_buffer_ms * 1.08, self._kept_x_end
        # Show the max-buffer line only once the buffer gets anywhere near it; a 10 s line would flatten a
        # buffer that hovers around a 100 ms prebuffer into the axis. The legend always names both values.
        top = max(top_data, 100.0) * 1.2
        if top >= snap.max_buffer_ms * 0.5:
            top = snap.max_buffer_ms * 1.08
        else:
            top = _step_up(top)  # ranges move in steps: every change redraws the (cached) axes
        return top, x_end

    def update_from(self, snap: Snapshot) -> None:
        self._last = snap
        t, ms, gate = snap.history_t, snap.history_ms, snap.history_gate_ms
        t_end = float(t[-1]) if len(t) else 0.0
        columns = max(MIN_COLUMNS, min(int(self._item.getViewBox().width()), MAX_COLUMNS))
        key = (snap.started, len(t), t_end, snap.prebuffer_ms, snap.max_buffer_ms, snap.play_started_s,
               snap.underrun_episodes, columns, snap.metrics is None)
        if key == self._drawn:
            return  # nothing new: the same picture
        self._drawn = key
        self._show_markers(True)
        self.points = len(t)
        gate_now = float(gate[-1]) if len(gate) else snap.prebuffer_ms
        top_data = max(float(ms.max()) if len(ms) else 0.0, float(gate.max()) if len(gate) else snap.prebuffer_ms)
        top, x_end = self._axes(snap, top_data, t_end)
        self.max_line.setPos(snap.max_buffer_ms)
        if (top, x_end) != self._ranges:
            self._ranges = (top, x_end)
            self._item.setYRange(0, top, padding=0)
            self._item.setXRange(0, x_end, padding=0)
            for obj in (self.curve, self.gate_curve, self.underruns):
                obj.set_bounds(QRectF(0, 0, x_end, top))
        xs, ys = peak_columns(t, ms, x_end, columns)
        gx, gy = peak_columns(*step_points(t, gate), x_end, columns)
        # The curves only grow at their right end: unless the range, the width or the decimation changed, only
        # the strip from the previous last point to the new one is repainted (two columns either side for the
        # pen); the rest of the plot, and the empty part right of the curve, is left as it is.
        shape = (snap.started, self._ranges, columns, len(xs) == len(t))
        dirty = None
        if self._drawn_end is not None and self._drawn_end[1] == shape:
            column_s = x_end / columns
            start = self._drawn_end[0] - 2 * column_s
            dirty = QRectF(start, 0, t_end + 2 * column_s - start, top)
        self.curve.set_points(xs, ys, dirty)
        self.gate_curve.set_points(gx, gy, dirty)
        self._drawn_end = (t_end, shape)
        gate_at_start = None
        if snap.play_started_s is not None:
            gate_at_start = gate_in_force(t, gate, snap.play_started_s, snap.prebuffer_ms)
            self.play_line.setPos(snap.play_started_s)
            self.play_line.show()
            self.start_marker.set_at((snap.play_started_s, gate_at_start))
        else:
            self.play_line.hide()
            self.start_marker.set_at(None)
        starts, ends = underrun_spans(snap)
        self.underruns.set_spans(starts, ends)
        self._spans = (starts, ends)
        self._open_span = bool(len(starts) and snap.metrics is None and len(snap.history_playing)
                               and snap.history_playing[-1] == 0)
        # live: the episodes that are over (the one going on would change the text, and relayout it, every frame)
        closed = len(starts) - int(self._open_span)
        silent_ms = (snap.metrics.underrun_ms if snap.metrics is not None
                     else float(np.sum(ends[:closed] - starts[:closed])) * 1000)
        started = "" if gate_at_start is None else f"{gate_at_start:.0f} ms at the start, "
        self._set_legend(prebuffer=f"prebuffer {started}now {gate_now:.0f} ms",
                         max=f"max {snap.max_buffer_ms / 1000:g} s",
                         underruns=f"underruns {snap.underrun_episodes}",
                         silent="" if not snap.underrun_episodes else f"{silent_ms:.0f} ms silent")
        self._label_wanted = {
            "start": (f"start at {gate_at_start:.0f} ms", QPointF(snap.play_started_s, gate_at_start))
            if gate_at_start is not None and snap.play_started_s is not None else ("", None),
            "max": (f"max {snap.max_buffer_ms / 1000:g} s", QPointF(x_end, snap.max_buffer_ms))
            if snap.max_buffer_ms <= top else ("", None),
            "gate": ("prebuffer", QPointF(float(t[0]), float(gate[0]))) if len(gate) > 1 else ("", None),
        }
        self._place_labels()
        self.updates += 1

    # --- labels and legend ------------------------------------------------------------------------------
    def _resized(self, *_args: object) -> None:
        # A finished Speak is not redrawn, so a resize must place the labels itself.
        self._place_labels()
        self._fit_legend()

    def _place_labels(self) -> None:
        """Put each label where it covers no other (see plot_items.place_labels); the ones that find no room
        are hidden. Done only when a label's text, its anchor or the plot's geometry changed."""
        vb = self._item.getViewBox()
        area = vb.sceneBoundingRect()
        starts, ends = self._spans
        if self._open_span:  # the one still going gets its length once it is over (no relayout per frame)
            starts, ends = starts[:-1], ends[:-1]
        spans = tuple(zip(np.round(starts, 3).tolist(), np.round(ends, 3).tolist(), strict=True))
        wanted_key = tuple((k, text, None if at is None else (at.x(), at.y()))
                           for k, (text, at) in self._label_wanted.items())
        key = (wanted_key, spans, self._ranges, (area.x(), area.y(), area.width(), area.height()))
        if key == self._label_key:
            return
        self._label_key = key
        wanted: list[tuple[pg.TextItem, QSizeF, list[QPointF]]] = []
        for name, (text, at) in self._label_wanted.items():
            label = self.labels[name]
            if at is None or not text:
                label.hide()
                continue
            size = self._set_label_text(label, text)
            wanted.append((label, size, self._candidates(name, vb.mapViewToScene(at), size, area)))
        # The longest underruns first, and no more than fit anyway: a Speak can have hundreds of them, and
        # placing is quadratic in the labels.
        longest = np.argsort(starts - ends, kind="stable")[:MAX_SPAN_LABELS]
        while len(self.span_labels) < len(longest):
            self.span_labels.append(self._label(self.colors.span_label))
        for label, i in itertools.zip_longest(self.span_labels, longest.tolist()):
            if i is None:
                label.hide()
                continue
            size = self._set_label_text(label, _duration(float(ends[i] - starts[i])))
            left = vb.mapViewToScene(QPointF(float(starts[i]), 0))
            right = vb.mapViewToScene(QPointF(float(ends[i]), 0))
            middle = (left.x() + right.x() - size.width()) / 2
            bottom = area.bottom() - size.height() - 1
            wanted.append((label, size, [QPointF(middle, bottom - k * (size.height() + 1)) for k in range(3)]))
        corners = place_labels(area, [(size, candidates) for _label, size, candidates in wanted])
        for (label, _size, _candidates), corner in zip(wanted, corners, strict=True):
            if corner is None:
                label.hide()
            else:
                label.setPos(vb.mapSceneToView(corner))
                label.show()
        self.prepare_paint()  # a label shown now sets its transform then (pyqtgraph's TextItem)

    @staticmethod
    def _set_label_text(label: pg.TextItem, text: str) -> QSizeF:
        if label.toPlainText() != text:  # relayout only when the text changed, not at 30 Hz
            label.setText(text)
        return label.textItem.boundingRect().size()

    @staticmethod
    def _candidates(name: str, at: QPointF, size: QSizeF, area: QRectF) -> list[QPointF]:
        """Top-left corners to try for a label about the point `at` (scene coordinates), best first."""
        w, h, gap = size.width(), size.height(), 3.0
        if name == "max":  # at the right end of the max line, under it, else over it, else at the left end
            return [QPointF(area.right() - w - gap, at.y() + gap), QPointF(area.right() - w - gap, at.y() - h - gap),
                    QPointF(area.left() + gap, at.y() + gap), QPointF(area.left() + gap, at.y() - h - gap)]
        if name == "gate":  # at the left end of the step line, over it, else under it
            return [QPointF(area.left() + gap, at.y() - h - 1), QPointF(area.left() + gap, at.y() + 1)]
        # "start": beside the marker, right of it first
        return [QPointF(at.x() + 6, at.y() - h - 2), QPointF(at.x() + 6, at.y() + 2),
                QPointF(at.x() - w - 6, at.y() - h - 2), QPointF(at.x() - w - 6, at.y() + 2)]

    def label_rects(self) -> dict[str, QRectF]:
        """Scene rectangles of the labels shown now (for tests): name -> rect."""
        shown = {name: label for name, label in self.labels.items() if label.isVisible()}
        shown.update({f"span{i}": label for i, label in enumerate(self.span_labels) if label.isVisible()})
        return {name: label.sceneBoundingRect() for name, label in shown.items()}

    def legend_text(self) -> dict[str, str]:
        """What the legend says now (for tests): key -> text."""
        return dict(self._legend_text)

    def legend_fits(self) -> bool:
        """Whether the legend's text fits its two lines (it would be cut off otherwise)."""
        width = self.legend.width()
        if width <= 0:
            return False
        return self.legend.height_for(self.legend.plain_text(), width) <= self.legend.height()

    def _fit_legend(self) -> None:
        self.legend.setVisible(bool(self._legend_text) and self.legend_fits())

    def _set_legend(self, **texts: str) -> None:
        if texts == self._legend_text:
            return  # set only when a number changed, not at 30 Hz
        self._legend_text = dict(texts)
        self.legend.setText(plot_theme.legend_html(texts, self.colors))
        self._fit_legend()

    def clear_plot(self) -> None:
        self._ranges = None
        self._drawn = None
        self._drawn_end = None
        self._last = None
        self._label_key = None
        self.curve.set_points(np.zeros(0), np.zeros(0))
        self.gate_curve.set_points(np.zeros(0), np.zeros(0))
        self.underruns.set_spans(np.zeros(0), np.zeros(0))
        self._spans = (np.zeros(0), np.zeros(0))
        self.play_line.hide()
        self.start_marker.set_at(None)
        for label in (*self.labels.values(), *self.span_labels):
            label.hide()
        self.points = 0


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


def step_points(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A step line through (t, v): each value holds until the next one starts; only the changes are kept
    (the gate changes now and then, and the history has a point every 10 ms)."""
    if len(t) < 2:
        return t, v
    change = np.flatnonzero(np.diff(v) != 0) + 1
    at = np.r_[0, change]
    xs = np.empty(2 * len(at))
    ys = np.empty(2 * len(at))
    xs[0::2] = t[at]  # where each value starts ...
    xs[1::2] = np.r_[t[change], t[-1]]  # ... and where it ends
    ys[0::2] = v[at]
    ys[1::2] = v[at]
    return xs, ys


def gate_in_force(t: np.ndarray, gate: np.ndarray, at_s: float, default: float) -> float:
    """The gate recorded last at or before `at_s` (the one the output compared the buffer against then)."""
    if not len(gate):
        return default
    i = int(np.searchsorted(t, at_s, side="right")) - 1
    return float(gate[max(0, min(i, len(gate) - 1))])


def underrun_spans(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the underrun episodes, seconds since the Speak: each starts when the device found the
    buffer empty (the output's own time) and ends at the first history point where the output plays again (one
    still going ends at the last point)."""
    starts = np.asarray(snap.underrun_t, dtype=float)
    t, playing = snap.history_t, snap.history_playing
    if not len(starts):
        return starts, starts.copy()
    if len(playing) != len(t) or not len(t):
        return starts, starts.copy()
    resumed = t[playing > 0]
    i = np.searchsorted(resumed, starts, side="right")
    ends = np.where(i < len(resumed), resumed[np.minimum(i, len(resumed) - 1)], t[-1])
    # an underrun older than the history kept (a Speak of minutes) has no known end: a mark, not a span
    ends = np.where(starts < t[0], starts, ends)
    return starts, np.maximum(ends, starts)


class LegendLabel(QLabel):
    """The buffer plot's legend, under the plots: as many lines high as the longest legend needs at its width,
    so a new number never changes its height (that would resize the plots, and a resize redraws their axes);
    its height changes only when its width does."""

    LONGEST = ("╌╌ prebuffer 88888 ms at the start, now 88888 ms   ╌╌ max 88.8 s   "
               "■ underruns 8888, 888888 ms silent")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setObjectName("bufferLegend")
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.height_for(self.LONGEST, 400))

    def height_for(self, text: str, width: int) -> int:
        """Pixels `text` needs at `width`, wrapped at words."""
        rect = self.fontMetrics().boundingRect(0, 0, max(1, width), 10_000, Qt.TextFlag.TextWordWrap, text)
        return rect.height() + 4

    def plain_text(self) -> str:
        """The text as shown, without the markup."""
        return QTextDocumentFragment.fromHtml(self.text()).toPlainText()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        height = self.height_for(self.LONGEST, event.size().width())
        if height != self.height():
            self.setFixedHeight(height)


class LivePlots(QWidget):
    """Waveform and buffer plots side by side, redrawn from the snapshot of ``source()`` (the current
    session) by a ~30 Hz timer."""

    def __init__(self, source: SessionSource, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self.waveform = WaveformPlot(self)
        self.buffer = BufferPlot(self)
        self.fixed_axes = QCheckBox("Fixed axes")
        self.fixed_axes.setToolTip("Keep the buffer plot's axes from one Speak to the next: up to the max buffer, "
                                   "and as long as the longest Speak so far, so runs compare by eye")
        self.fixed_axes.toggled.connect(self.buffer.set_fixed_axes)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setVerticalSpacing(2)
        layout.addWidget(self.waveform, 0, 0)
        layout.addWidget(self.buffer, 0, 1)
        # Under the plots, outside them: the buffer plot's legend (it covered the curve and its labels inside).
        below = QHBoxLayout()
        below.addWidget(self.fixed_axes, 0, Qt.AlignmentFlag.AlignTop)
        below.addWidget(self.buffer.legend, 1)
        layout.addLayout(below, 1, 0, 1, 2)
        layout.setColumnStretch(0, 1)
        layout.setColumnStretch(1, 1)
        layout.setRowStretch(0, 1)
        self._drawn_final: SpeakSession | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(FAST_PERIOD_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        plot_theme.follow(self)  # colours of the light or dark scheme, live

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
