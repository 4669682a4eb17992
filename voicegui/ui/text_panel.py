"""TextPanel: the text to speak, its character count, and the Speak and Stop buttons with the reason Speak is
disabled when it is; while a Speak plays, its progress line (ui/progress.py) and the sentence being heard
highlighted in the text, with the word being heard marked more strongly inside it (extra selections: the text,
the caret and the user's selection are not touched).

Threads: GUI thread only. The window connects the buttons, calls `update_state()` whenever the text or the
player's state changes, and tells the progress line what to follow (`progress.follow`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from voicegui.limits import MAX_TEXT_CHARS
from voicegui.ui.progress import SpeakProgress
from voicegui.ui.speak_options import MAX_INPUT_CHARS


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
        self.highlighted: tuple[int, int] | None = None  # the span marked as being heard
        self.highlighted_word: tuple[int, int] | None = None  # the word marked inside it
        self._following = True  # the text box scrolls with the highlight (until the user scrolls away)
        self._scrolled_to: int | None = None  # the scroll position the highlight last left
        self.progress = SpeakProgress(self.text, self.highlight, highlight_word=self.highlight_word)
        self.text_edit.textChanged.connect(self.progress.text_changed)
        actions = QHBoxLayout()
        actions.addWidget(self.speak_button)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.progress)
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

    def highlight(self, span: tuple[int, int] | None) -> None:
        """Mark `span` (positions in the text box's document) as the sentence being heard; None: no mark.

        The box follows the mark down the text, unless the user has scrolled it out of view: then it stays
        where the user put it, and follows again once the mark is in view again."""
        self.highlighted = span
        if span is None:
            self.highlighted_word = None
            self.text_edit.setExtraSelections([])
            self._following, self._scrolled_to = True, None
            return
        self._draw_marks()
        start, end = self._clamped(span)
        self._keep_in_view(start, end)

    def highlight_word(self, span: tuple[int, int] | None) -> None:
        """Mark `span` as the word being heard (drawn over the sentence's mark); None: no word mark."""
        self.highlighted_word = span
        self._draw_marks()

    def _clamped(self, span: tuple[int, int]) -> tuple[int, int]:
        last = max(0, self.text_edit.document().characterCount() - 1)
        return min(span[0], last), min(span[1], last)

    def _draw_marks(self) -> None:
        palette = self.text_edit.palette()
        base, accent = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Highlight)
        selections = []
        for span, share in ((self.highlighted, 0.35), (self.highlighted_word, 0.7)):
            if span is None:
                continue
            start, end = self._clamped(span)
            cursor = QTextCursor(self.text_edit.document())
            cursor.setPosition(start)
            cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
            fmt = QTextCharFormat()
            fmt.setBackground(_mix(base, accent, share))
            if share > 0.5:  # the word: a strong tint needs the text colour that reads on the accent
                fmt.setForeground(palette.color(QPalette.ColorRole.HighlightedText))
            selection = QTextEdit.ExtraSelection()
            selection.cursor = cursor
            selection.format = fmt
            selections.append(selection)
        self.text_edit.setExtraSelections(selections)

    def _keep_in_view(self, start: int, end: int) -> None:
        bar = self.text_edit.verticalScrollBar()
        visible = self._in_view(start, end)
        if self._scrolled_to is not None and bar.value() != self._scrolled_to and not visible:
            self._following = False  # the user scrolled away from it: leave the view where they put it
        if visible:
            self._following = True
        elif self._following:
            # The plain text edit scrolls by lines: bring the sentence's start to a quarter of the height.
            top = self.text_edit.cursorRect(self._cursor_at(start)).top()
            quarter = self.text_edit.viewport().height() // 4
            bar.setValue(bar.value() + round((top - quarter) / max(1, self.text_edit.fontMetrics().lineSpacing())))
        self._scrolled_to = bar.value()

    def _cursor_at(self, position: int) -> QTextCursor:
        cursor = QTextCursor(self.text_edit.document())
        cursor.setPosition(position)
        return cursor

    def _in_view(self, start: int, end: int) -> bool:
        """Whether the span's first line is in view (a long sentence need not fit whole)."""
        rect = self.text_edit.cursorRect(self._cursor_at(start))
        return rect.top() >= 0 and rect.bottom() <= self.text_edit.viewport().height()


def _mix(base: QColor, accent: QColor, share: float = 0.35) -> QColor:
    """A tint of the accent on the base colour (`share` of the accent): readable in light and dark themes alike."""
    def channel(b: int, a: int) -> int:
        return round((1 - share) * b + share * a)

    return QColor(channel(base.red(), accent.red()), channel(base.green(), accent.green()),
                  channel(base.blue(), accent.blue()))
