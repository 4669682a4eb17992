"""Cheap pyqtgraph items for the live plots: a polyline whose points numpy writes straight into Qt's memory,
shaded spans (the underrun episodes), a point marker, and the placement of text labels so that none covers
another.

Threads: GUI thread only (it is a QGraphicsItem).

Why not a PlotDataItem: at 30 frames a second a PlotDataItem's ``setData`` (data checks, bounds, downsampling,
a new QPainterPath) and its Python ``boundingRect`` (numpy reductions over the data, asked several times per
paint) were a large part of the window's CPU while speaking (profiled). This item's bounds are whatever its
owner says they are (the plot's fixed range), its points live in one QPolygonF that is reused while the point
count stays the same, and ``paint`` is one ``drawPolyline``. The owner decides how many points there are, which
is at most a couple per pixel column (see ``peak_columns``).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSizeF
from PySide6.QtGui import QBrush, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from voicegui.ui.pyqtgraph_import import pg


class Polyline(pg.GraphicsObject):
    """A polyline in data coordinates; ``set_points`` replaces the points and repaints (all, or a part)."""

    def __init__(self, pen: QPen) -> None:
        super().__init__()
        self._pen = pen
        self._poly = QPolygonF()
        self._xy = np.zeros((0, 2))
        self._bounds = QRectF()

    def set_pen(self, pen: QPen) -> None:
        """Draw with `pen` from now on (the theme changed)."""
        self._pen = pen
        self.update()

    def pen(self) -> QPen:
        return self._pen

    def set_bounds(self, rect: QRectF) -> None:
        """The area the points stay in (the plot's view range): what Qt repaints and culls by."""
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = QRectF(rect)

    def set_points(self, x: np.ndarray, y: np.ndarray, dirty: QRectF | None = None) -> None:
        """Draw these points; `dirty` (data coordinates) limits the repaint to where something changed."""
        n = len(x)
        if n == 0:  # an empty QPolygonF has no memory to view (numpy sees a read-only null buffer)
            self._poly = QPolygonF()
            self._xy = np.zeros((0, 2))
        elif n != len(self._xy):
            self._poly = pg.functions.create_qpolygonf(n)
            self._xy = pg.functions.ndarray_from_qpolygonf(self._poly)
        if n:
            self._xy[:, 0] = x
            self._xy[:, 1] = y
        if dirty is None:
            self.update()
        else:
            self.update(dirty)

    def points(self) -> int:
        return len(self._xy)

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # pyqtgraph's name, as PlotDataItem has it
        return self._xy[:, 0].copy(), self._xy[:, 1].copy()

    def boundingRect(self) -> QRectF:  # Qt's name
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if len(self._xy) > 1:
            painter.setPen(self._pen)
            painter.drawPolyline(self._poly)


def peak_columns(t: np.ndarray, v: np.ndarray, t_end: float, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most two points per column of [0, t_end] (its min and its max, in time order), the first and last
    point added: a curve of any length drawn with no more points than the plot has pixels, peaks intact."""
    if len(t) <= 2 * columns or t_end <= 0:
        return t, v
    col = np.minimum((t * (columns / t_end)).astype(np.intp), columns - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    lo = np.minimum.reduceat(v, starts)
    hi = np.maximum.reduceat(v, starts)
    # each column's min then max at its first point's time, so the line goes down and up within its column
    out_t = np.empty(2 * len(starts) + 1)
    out_v = np.empty(2 * len(starts) + 1)
    out_t[:-1] = np.repeat(t[starts], 2)
    out_v[0:-1:2] = lo
    out_v[1:-1:2] = hi
    out_t[-1] = t[-1]
    out_v[-1] = v[-1]
    return out_t, out_v


class Marker(QGraphicsEllipseItem):
    """A circle of `size` pixels at one point in data coordinates (where playback started), or hidden.

    A Qt item with no Python methods Qt calls: pyqtgraph's ScatterPlotItem, for this one point, worked out its
    bounds in Python (pixel vectors, Point objects) on every paint of the plot, ~0.15 ms a frame (profiled)."""

    def __init__(self, size: float, pen: QPen, brush: QBrush) -> None:
        super().__init__(-size / 2, -size / 2, size, size)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)  # pixels, whatever the zoom
        self.setPen(pen)
        self.setBrush(brush)
        self._at: tuple[float, float] | None = None
        self.hide()

    def set_at(self, at: tuple[float, float] | None) -> None:
        """Put it at (x, y), data coordinates; None hides it. The same point again changes nothing."""
        if at == self._at:
            return
        self._at = at
        if at is None:
            self.hide()
        else:
            self.setPos(QPointF(*at))
            self.show()

    def getData(self) -> tuple[list[float], list[float]]:  # pyqtgraph's name, as ScatterPlotItem has it
        return ([], []) if self._at is None else ([self._at[0]], [self._at[1]])


class Spans(pg.GraphicsObject):
    """Shaded vertical spans (x0 .. x1 in data coordinates) over the full height of the bounds: the underrun
    episodes. A span narrower than two pixels is drawn two pixels wide, so a short one stays visible; spans do
    not merge into one bar because each keeps its own, exact extent."""

    MIN_PIXELS = 2.0

    def __init__(self, brush: QBrush, edge: QPen) -> None:
        super().__init__()
        self._brush = brush
        self._edge = edge
        self._x0 = np.zeros(0)
        self._x1 = np.zeros(0)
        self._bounds = QRectF()

    def set_colors(self, brush: QBrush, edge: QPen) -> None:
        """Fill and edge from now on (the theme changed)."""
        self._brush, self._edge = brush, edge
        self.update()

    def set_bounds(self, rect: QRectF) -> None:
        if rect != self._bounds:
            self.prepareGeometryChange()
            self._bounds = QRectF(rect)

    def set_spans(self, x0: np.ndarray, x1: np.ndarray) -> None:
        """Draw these spans; only the ones that changed are repainted (while an underrun goes on, its span grows
        every frame, and repainting the whole plot for it would cost a full frame each time)."""
        x0, x1 = np.asarray(x0, dtype=float), np.asarray(x1, dtype=float)
        if np.array_equal(x0, self._x0) and np.array_equal(x1, self._x1):
            return
        dirty: QRectF | None = None
        if len(x0) >= len(self._x0) and np.array_equal(x0[:len(self._x0)], self._x0):
            kept = len(self._x0) - 1 if len(self._x0) else 0  # the last old span may have grown, new ones came
            if np.array_equal(x1[:kept], self._x1[:kept]):
                # from where the old last span ended if it grew from there, else where the first new one starts
                grew = len(self._x0) and x1[kept] != self._x1[-1]
                left = float(min(self._x1[-1], x1[kept])) if grew else float(x0[len(self._x0)])
                right = float(max(x1[kept:].max(), self._x1[kept:].max(initial=left)))
                margin = 0.01 * self._bounds.width()  # spans narrower than MIN_PIXELS are drawn wider
                dirty = QRectF(left - margin, self._bounds.top(), right - left + 2 * margin, self._bounds.height())
        self._x0, self._x1 = x0.copy(), x1.copy()
        if dirty is None:
            self.update()
        else:
            self.update(dirty)

    def getData(self) -> tuple[np.ndarray, np.ndarray]:  # pyqtgraph's name: (starts, ends)
        return self._x0.copy(), self._x1.copy()

    def boundingRect(self) -> QRectF:  # Qt's name
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not len(self._x0) or self._bounds.isEmpty():
            return
        scale = abs(painter.transform().m11()) or 1.0
        least = self.MIN_PIXELS / scale
        top, height = self._bounds.top(), self._bounds.height()
        painter.setPen(self._edge)
        painter.setBrush(self._brush)
        for x0, x1 in zip(self._x0, self._x1, strict=True):
            painter.drawRect(QRectF(float(x0), top, max(float(x1 - x0), least), height))


def place_labels(area: QRectF, labels: list[tuple[QSizeF, list[QPointF]]],
                 taken: list[QRectF] | None = None) -> list[QPointF | None]:
    """Where each label goes: for each (size, candidate top-left corners), in priority order, the first
    candidate whose rectangle lies inside `area` and meets no rectangle placed before it (nor any in `taken`);
    None when no candidate fits (that label is hidden rather than drawn over another). Scene coordinates."""
    placed = list(taken or [])
    out: list[QPointF | None] = []
    for size, candidates in labels:
        chosen = None
        for corner in candidates:
            rect = QRectF(corner, size)
            if area.contains(rect) and not any(rect.intersects(other) for other in placed):
                chosen = corner
                placed.append(rect)
                break
        out.append(chosen)
    return out
