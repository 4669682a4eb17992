"""The pure parts of the plots: label placement never overlaps, the gate's step line, the gate in force."""

from __future__ import annotations

import itertools

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSizeF

from voicegui.ui.plot_items import place_labels
from voicegui.ui.plots import gate_in_force, step_points


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
