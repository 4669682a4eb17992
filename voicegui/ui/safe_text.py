"""Showing text that came from a server or a file: never as rich text, never a key, never huge.

A QLabel (and a tooltip) renders anything that looks like HTML as rich text: a server's error message
`<img src="/dev/zero">` made Qt read /dev/zero until it aborted (std::bad_alloc), /dev/urandom hung the
window, and an HTML login page rendered as a phishing prompt inside the app. So every label that can show a
server's or a file's text is a `PlainLabel`, and every such tooltip goes through `plain_tooltip`.

* `shown(text)`: the text as the window may show it: redacted (voicegui.crash.redact, the app's one
  redaction), control characters other than newline and tab replaced, cut to `MAX_SHOWN_CHARS`.
* `PlainLabel`: a QLabel whose format is Qt.TextFormat.PlainText and whose setText() applies `shown()`.
* `plain_tooltip(text)`: `shown(text)` HTML-escaped inside a <p>, so Qt renders it literally.

Threads: GUI thread only (widgets); `shown` and `plain_tooltip` are pure functions.
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from voicegui.crash import redact

# A whole error body (an HTML page, megabytes of JSON) must not freeze the layout: a user reads a sentence.
MAX_SHOWN_CHARS = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def shown(text: str) -> str:
    """`text` redacted, without control characters (newline and tab stay), at most MAX_SHOWN_CHARS long."""
    if not text:
        return ""
    text = _CONTROL.sub("\ufffd", redact(text))
    if len(text) > MAX_SHOWN_CHARS:
        text = text[: MAX_SHOWN_CHARS - 1].rstrip() + "…"
    return text


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` literally (Qt treats a tooltip that looks like HTML as rich text)."""
    if not text:
        return ""
    return "<p style='white-space:pre-wrap'>" + html.escape(shown(text)) + "</p>"


class PlainLabel(QLabel):
    """A QLabel for text from outside (server messages, file names, voice names): plain text, redacted,
    bounded. Only setText() from Python is filtered, which is how voicegui sets every label."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setText(text)

    def setText(self, text: str) -> None:  # Qt's name
        super().setText(shown(text))
