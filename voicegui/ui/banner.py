"""ErrorBanner: a non-modal message strip at the top of the window with a close button. Its messages often
quote a server (an error body): shown as plain text, redacted and cut (ui/safe_text.py).

Threads: GUI thread only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStyle, QToolButton, QWidget

from voicegui.ui.safe_text import PlainLabel

# scheme -> (background, border, text): red-tinted, the text contrast above 7:1 on both
STRIP_COLOURS = {"light": ("#fdecea", "#f5c2c0", "#611a15"), "dark": ("#4a1f1c", "#8c3a33", "#ffd9d4")}


class ErrorBanner(QFrame):
    """A non-modal message strip at the top of the window with a close button; the app keeps working.
    ``dismissed`` is emitted when the user closes it (the window then drops the same error from the status line)."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.apply_scheme("light")
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(20, 20))
        self.label = PlainLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def apply_scheme(self, scheme: str) -> None:
        """Colours for a "light" or "dark" palette (ui/theme.py): a pale strip would glare in a dark window."""
        background, border, text = STRIP_COLOURS["dark" if scheme == "dark" else "light"]
        self.setStyleSheet(f"#errorBanner {{ background: {background}; border: 1px solid {border}; "
                           f"border-radius: 4px; }} #errorBanner QLabel {{ color: {text}; }}")

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()

    def text(self) -> str:
        return self.label.text()
