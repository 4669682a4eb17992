"""SpeakProgress: the progress line under the text while a Speak plays ('Piece 2 of 3 · 0:41 / ~2:05') and the
sentence being heard highlighted in the text box.

Threads: GUI thread only. It polls the Playback it follows (`follow(source)`) on a QTimer (10 Hz: a sentence
lasts seconds) through the session's ``snapshot()``, safe from any thread; the mapping from the played-audio
clock to pieces and sentences is ui/speech_map.py's. Elapsed and the highlight follow what the device played,
so they hold still while it prebuffers and stop at Stop; at Stop or the end both are cleared.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from voicegui.stream.player import Playback
from voicegui.stream.prebuffer import PrebufferPolicy
from voicegui.ui.speech_map import PieceMap, map_pieces, progress, progress_line

REFRESH_MS = 100
ENDED_STATES = ("done", "stopped", "error")
TOOLTIP = ("Elapsed is the audio played so far. The total is marked ~ while it is estimated: from the characters "
           "per second measured on the pieces received so far, until every piece has arrived.\n"
           "The highlighted sentence is estimated: servers do not say when each sentence is spoken, so each "
           "piece's audio (whose length is exact) is shared among its sentences by their number of characters.")


class SpeakProgress(QLabel):
    """`text()` -> the text box's text; `highlight(span)` marks a span of it (None: no mark)."""

    def __init__(self, text: Callable[[], str], highlight: Callable[[tuple[int, int] | None], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speakProgress")
        self.setToolTip(TOOLTIP)
        self._text = text
        self._highlight = highlight
        self._source: Callable[[], Playback | None] | None = None
        self._playback: Playback | None = None
        self._map: list[PieceMap] | None = None
        self._chars: list[int] = []
        self._fallback_s: list[float] = []
        self.sentence: tuple[int, int] | None = None  # the span highlighted now
        self.hide()
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def follow(self, source: Callable[[], Playback | None]) -> None:
        """Show the progress of `source()` (None: nothing plays that this line reports) from now on."""
        self._source = source
        self.timer.start()

    def text_changed(self) -> None:
        """The text box was edited: the spans of the running Speak are no longer where they were."""
        self._playback = None

    def refresh(self) -> None:
        playback = None if self._source is None else self._source()
        if playback is None or playback.done.is_set():
            self._clear()
            return
        snap = playback.session.snapshot()
        if snap.state in ENDED_STATES:
            self._clear()
            return
        if playback is not self._playback:
            self._start(playback)
        p = progress(snap, self._map, self._chars, self._fallback_s)
        self.setText(progress_line(p))
        self.show()
        self._set_sentence(p.sentence)

    def _start(self, playback: Playback) -> None:
        req = playback.request
        texts = [r.text for r in (req, *playback.options.continuation)]
        self._playback = playback
        self._map = map_pieces(self._text(), texts)
        self._chars = [len("".join(t.split())) for t in texts]
        self._fallback_s = [PrebufferPolicy.expected_duration(t, req.speed) for t in texts]

    def _set_sentence(self, span: tuple[int, int] | None) -> None:
        if span != self.sentence:
            self.sentence = span
            self._highlight(span)

    def _clear(self) -> None:
        self._playback = None
        self._map = None
        self._set_sentence(None)
        if not self.isHidden():
            self.hide()
            self.clear()
