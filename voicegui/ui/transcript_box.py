"""TranscriptBox: what a Realtime model says it read, shown while it grows and flagged when it is not verbatim.

Threads: GUI thread only. It polls the playback it is given (`source()`) on a slow QTimer (~4 Hz: as fast as
anyone reads); the transcript is one str attribute the loop replaces, safe to read there.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QGroupBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from voicegui.stream.player import Playback
from voicegui.stream.realtime import transcript_differs


class TranscriptBox(QGroupBox):
    """`source()` -> the Playback whose transcript to show (None: nothing to show)."""

    def __init__(self, source: Callable[[], Playback | None], parent: QWidget | None = None) -> None:
        super().__init__("T&ranscript (Realtime)", parent)
        self.source = source
        self.transcript = QPlainTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setTabChangesFocus(True)
        self.transcript.setPlaceholderText("What the Realtime model says it read appears here.")
        self.transcript.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        self.flag = QLabel("The model's reading differs from the text.")
        self.flag.setStyleSheet("color: #c62828; font-weight: bold;")
        self.flag.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.transcript)
        layout.addWidget(self.flag)
        self.timer = QTimer(self)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def clear(self) -> None:
        self.transcript.clear()
        self.flag.hide()

    def refresh(self, final: bool = False) -> None:
        """Show the transcript so far; once the playback ended (`final`), flag a reading that is not verbatim."""
        playback = self.source()
        if playback is None or not self.isVisible():
            return
        text = playback.transcript
        if text != self.transcript.toPlainText():
            self.transcript.setPlainText(text)
        if final and text:
            spoken = " ".join(r.text for r in (playback.request, *playback.options.continuation))
            self.flag.setVisible(transcript_differs(spoken, text))
