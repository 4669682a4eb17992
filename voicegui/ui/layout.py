"""Layout pieces of the main window: a scrolling page, a column, and the right-hand side (the tabs
with the TTFA readout under them).

Threads: GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget


def scrolled(widget: QWidget) -> QScrollArea:
    """Panels taller than a small window scroll instead of squeezing their fields."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def column(*items: tuple[QWidget, int], margin: int = 0) -> QWidget:
    """(widget, stretch) pairs stacked top to bottom; stretch -1 ends with a spacer."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(margin, margin, margin, margin)
    for widget, stretch in items:
        layout.addWidget(widget, max(stretch, 0))
    if items and items[-1][1] < 0:
        layout.addStretch(1)
    return page


def side_by_side(left: QWidget, right: QWidget, stretch: tuple[int, int], sizes: tuple[int, int]) -> QSplitter:
    """A horizontal splitter that never collapses either side."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    for index, widget in enumerate((left, right)):
        splitter.addWidget(widget)
        splitter.setStretchFactor(index, stretch[index])
    splitter.setChildrenCollapsible(False)
    splitter.setSizes(list(sizes))
    return splitter


class SidePane(QSplitter):
    """The tabs (`pages`: widget and title), and under them the readout, which stays in view: it is what a
    Speak is judged by. The readout keeps its natural height; the tabs take the rest."""

    def __init__(self, pages: list[tuple[QWidget, str]], readout: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.tabs = QTabWidget()
        for widget, title in pages:
            self.tabs.addTab(widget, title)
        self.addWidget(self.tabs)
        self.addWidget(readout)
        self.setStretchFactor(0, 1)
        self.setStretchFactor(1, 0)
        self.setChildrenCollapsible(False)
