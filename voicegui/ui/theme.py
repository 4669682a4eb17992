"""Light and dark: the whole application palette follows the system's colour scheme (Qt 6's
QStyleHints.colorScheme; a platform that reports none, such as offscreen, counts as light) unless the user
chose one in View > Theme.

One ThemeController per QApplication (controller()) owns the choice ("system", "light" or "dark"), applies
it and emits ``changed`` with the scheme in effect ("light" or "dark") whenever that changes, including when
the system switches while the choice is "system". Widgets that draw their own colours (the plots, the error
banner) connect to it or ask is_dark(); the plots can adopt it without knowing where the choice comes from.

Following the system keeps the platform's own style and palette (what the app started with). A manual choice
switches to the Fusion style, which honours a palette everywhere, with a palette built here.

Threads: GUI thread only.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

log = logging.getLogger(__name__)

CHOICES = ("system", "light", "dark")
LABELS = {"system": "&Follow the system", "light": "&Light", "dark": "&Dark"}

ROLE = QPalette.ColorRole
GROUP = QPalette.ColorGroup


def system_scheme() -> str:
    """"dark" when the platform says its colour scheme is dark, else "light" (also when it does not say)."""
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)  # Qt >= 6.5
    if scheme is not None and scheme() == Qt.ColorScheme.Dark:
        return "dark"
    return "light"


def dark_palette() -> QPalette:
    """A dark palette for Fusion: light text on dark grey, the accent kept readable on both."""
    p = QPalette()
    colors = {
        ROLE.Window: "#2b2b2e", ROLE.WindowText: "#e6e6e6", ROLE.Base: "#1e1e20", ROLE.AlternateBase: "#2f2f33",
        ROLE.ToolTipBase: "#3a3a3e", ROLE.ToolTipText: "#f0f0f0", ROLE.PlaceholderText: "#8c8c92",
        ROLE.Text: "#e6e6e6", ROLE.Button: "#3a3a3e", ROLE.ButtonText: "#e6e6e6", ROLE.BrightText: "#ff6b6b",
        ROLE.Light: "#4a4a50", ROLE.Midlight: "#404045", ROLE.Mid: "#2f2f33", ROLE.Dark: "#1a1a1c",
        ROLE.Shadow: "#000000", ROLE.Highlight: "#3d8fe0", ROLE.HighlightedText: "#ffffff",
        ROLE.Link: "#7ab4f5", ROLE.LinkVisited: "#b59af0",
    }
    for role, color in colors.items():
        p.setColor(role, QColor(color))
    for role, color in ((ROLE.WindowText, "#7d7d82"), (ROLE.Text, "#7d7d82"), (ROLE.ButtonText, "#7d7d82"),
                        (ROLE.Base, "#262628"), (ROLE.Highlight, "#505055")):
        p.setColor(GROUP.Disabled, role, QColor(color))
    return p


def light_palette() -> QPalette:
    fusion = QStyleFactory.create("Fusion")
    palette = fusion.standardPalette()
    palette.setColor(ROLE.Highlight, QColor("#2a6fc9"))  # Fusion's default accent is too pale for a focus ring
    return palette


class ThemeController(QObject):
    """The app's theme choice and the scheme in effect; ``changed(scheme)`` when the scheme changes."""

    changed = Signal(str)

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._app = app
        self._choice = "system"
        self._scheme = system_scheme()
        style = app.style()
        self._native_style = style.name() if style is not None else "Fusion"
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(lambda _scheme: self._apply())

    def choice(self) -> str:
        return self._choice

    def scheme(self) -> str:
        """"light" or "dark": what the palette shows now."""
        return self._scheme

    def is_dark(self) -> bool:
        return self._scheme == "dark"

    def set_choice(self, choice: str) -> None:
        """"system", "light" or "dark"; anything else is a programming error (ValueError)."""
        if choice not in CHOICES:
            raise ValueError(f"theme must be one of {', '.join(CHOICES)}, not {choice!r}")
        self._choice = choice
        self._apply()

    def _apply(self) -> None:
        system = system_scheme()
        scheme = system if self._choice == "system" else self._choice
        if self._choice == "system":
            self._set_style(self._native_style)
            # An empty palette resets the app's to the platform's, which follows the platform's scheme itself.
            self._app.setPalette(QPalette())
        else:
            self._set_style("Fusion")
            self._app.setPalette(dark_palette() if scheme == "dark" else light_palette())
        if scheme != self._scheme:
            self._scheme = scheme
            log.info("theme: %s (%s)", scheme, self._choice)
            self.changed.emit(scheme)

    def _set_style(self, name: str) -> None:
        style = self._app.style()
        if style is None or style.name().lower() != name.lower():  # a new style repolishes every widget
            self._app.setStyle(name)


def controller() -> ThemeController:
    """The QApplication's ThemeController, made on first use (a QApplication must exist)."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        raise RuntimeError("theme.controller() needs a QApplication")
    found = app.findChild(ThemeController)
    return found if isinstance(found, ThemeController) else ThemeController(app)


def is_dark() -> bool:
    """The scheme in effect is dark (for widgets that pick their own colours)."""
    return controller().is_dark()
