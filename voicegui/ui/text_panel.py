"""TextPanel: the text to speak, its character count, and the Speak and Stop buttons with the reason Speak is
disabled when it is.

Threads: GUI thread only. The window connects the buttons and calls `update_state()` whenever the text or the
player's state changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QStyle, QVBoxLayout, QWidget

from voicegui.ui.speak_options import MAX_INPUT_CHARS

MAX_TEXT_CHARS = 200_000  # beyond this, something was pasted by mistake


class TextPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text_edit = QPlainTextEdit()
        self.text_edit.setPlaceholderText("Type or paste the text to speak, then press Speak (Ctrl+Enter).")
        self.text_edit.setTabChangesFocus(True)
        self.text_label = QLabel("&Text")
        self.text_label.setBuddy(self.text_edit)
        self.char_count = QLabel()
        self.char_count.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.speak_button = QPushButton("&Speak")
        self.speak_button.setToolTip("Speak the text (Ctrl+Enter)")
        self.speak_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.speak_button.setDefault(True)
        self.stop_button = QPushButton("St&op")
        self.stop_button.setToolTip("Stop speaking (Esc)")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setEnabled(False)
        self.speak_reason = QLabel()
        self.speak_reason.setObjectName("speakReason")
        self.speak_reason.setEnabled(False)  # dimmed: a hint, not an error
        actions = QHBoxLayout()
        actions.addWidget(self.speak_button)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.speak_reason, 1)
        actions.addWidget(self.char_count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text_label)
        layout.addWidget(self.text_edit, 1)
        layout.addLayout(actions)

    def text(self) -> str:
        return self.text_edit.toPlainText()

    def block_reason(self) -> str | None:
        """Why the text cannot be spoken as it is, or None."""
        text = self.text()
        if not text.strip():
            return "Nothing to speak: type some text."
        if len(text) > MAX_TEXT_CHARS:
            return f"Text is longer than {MAX_TEXT_CHARS} characters: shorten it to speak it."
        return None

    def update_state(self, can_start: bool, can_stop: bool) -> None:
        """The count, the reason, and which buttons work: Speak when the text allows and `can_start`."""
        n = len(self.text())
        self.char_count.setText(f"{n} / {MAX_INPUT_CHARS}" if n <= MAX_INPUT_CHARS
                                else f"{n} characters: sent in pieces of ≤ {MAX_INPUT_CHARS}")
        self.char_count.setStyleSheet("color: #c62828; font-weight: bold;" if n > MAX_TEXT_CHARS else "")
        reason = self.block_reason()
        self.speak_reason.setText(reason or "")
        self.speak_button.setToolTip(reason or "Speak the text (Ctrl+Enter)")
        self.speak_button.setEnabled(reason is None and can_start)
        self.stop_button.setEnabled(can_stop)
