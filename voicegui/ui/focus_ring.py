"""A visible focus ring for keyboard users: a 2 px frame in the palette's highlight colour around whatever
widget of the window has the focus.

Styles draw focus for some widgets only (Fusion shows none on the plots, the scroll areas or the panels that
take the focus themselves), so the ring is drawn by a small transparent widget laid over the focused one: it
is a sibling of that widget (same parent, raised), so it scrolls, moves and is clipped with it. Focus a click
gave shows it too, as Qt's styles do for the widgets they mark: Qt does not say why the focus moved without an
event filter on the whole application, which would run for every event of the GUI thread. Only focus
changes and the focused widget's move/resize/show/hide events are watched: nothing runs per frame or per
paint of other widgets.

Threads: GUI thread only.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QApplication, QSplitter, QWidget

WIDTH = 2
MARGIN = 2  # the ring sits just outside the widget (inside its parent), so it hides none of it


class _Ring(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        pen = QPen(self.palette().color(QPalette.ColorRole.Highlight), WIDTH)
        pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
        painter.setPen(pen)
        half = WIDTH // 2
        painter.drawRect(self.rect().adjusted(half, half, -half, -half))
        painter.end()


class FocusRing(QObject):
    """Follows the keyboard focus inside `window` (made once per window; parented to it)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._ring = _Ring()
        self._target: QWidget | None = None
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        app.focusChanged.connect(self._on_focus)

    def target(self) -> QWidget | None:
        """The widget the ring is around now, or None when no ring shows."""
        return self._target if self._target is not None and self.ring_visible() else None

    def ring_visible(self) -> bool:
        return shiboken6.isValid(self._ring) and self._ring.isVisible()

    def ring_rect(self) -> QRect:
        """The ring's geometry in its parent's coordinates (the focused widget's, widened by MARGIN)."""
        return self._ring.geometry()

    def _on_focus(self, _old: QWidget | None, new: QWidget | None) -> None:
        if not shiboken6.isValid(self._window):
            return
        self._watch(None)
        if new is None or new.window() is not self._window:
            self._hide()
            return
        parent = new.parentWidget()
        if parent is None or isinstance(parent, QSplitter):  # a QSplitter would take the ring for a pane
            self._hide()
            return
        if not shiboken6.isValid(self._ring):  # deleted with a parent it had before
            self._ring = _Ring()
        if self._ring.parentWidget() is not parent:
            self._ring.setParent(parent)
        self._watch(new)
        self._place()

    def _watch(self, widget: QWidget | None) -> None:
        if self._target is not None and shiboken6.isValid(self._target):
            self._target.removeEventFilter(self)
        self._target = widget
        if widget is not None:
            widget.installEventFilter(self)

    def _hide(self) -> None:
        if shiboken6.isValid(self._ring):
            self._ring.hide()

    def _place(self) -> None:
        target = self._target
        if target is None or not shiboken6.isValid(target) or not target.isVisible():
            self._hide()
            return
        parent = self._ring.parentWidget()
        ring = target.geometry().adjusted(-MARGIN, -MARGIN, MARGIN, MARGIN)
        # A widget that fills its parent (a tab's page, a plot at the edge) gets the ring drawn over its own
        # outer pixels there: outside, the parent would clip it away.
        self._ring.setGeometry(ring.intersected(parent.rect()) if parent is not None else ring)
        self._ring.show()
        self._ring.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._target and event.type() in (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show,
                                                         QEvent.Type.Hide):
            self._place()
        return False
