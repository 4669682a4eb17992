"""A/B panel: two voices (or two formats) side by side on the same text; one key switches between them.

Side A and side B each name a voice and a format. Play A / Play B, the toggle button, Space or Ctrl+B (while
the panel has focus) stop whatever plays and start the other side from the beginning. The first play of a
side fetches it live (keep_original) and is recorded in the history like any Speak; once its whole body has
arrived, the bytes are kept in memory for this text/voice/format/model, and every later play of that side is
a replay of them through the same SpeakSession path (`SpeakOptions(source=replay_source(...))`): no request,
so switching is instant and both sides are heard exactly as first received.

Threads: GUI thread only (= the qasync loop thread). Each play is an async slot that awaits the previous
session's end (its device closed) before starting the next; a generation number makes the newest key press
win when presses come faster than sessions stop. The in-memory cache is touched on that one thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.formats import FORMATS
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakSession
from voicegui.ui.history_panel import record_session
from voicegui.ui.lineup_panel import DEFAULT_FORMAT, PlayerHost
from voicegui.ui.provider_panel import combo_voice_id

log = logging.getLogger(__name__)

SIDES = ("A", "B")
# Both states draw the same frame width so the layout does not jump when the playing side changes.
_BOX_STYLE = ("QGroupBox {{ border: 2px solid {color}; border-radius: 4px; margin-top: 1.2em; padding-top: 4px;"
              " font-weight: {weight}; }}"
              "QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 3px; }}")
_ACTIVE_STYLE = _BOX_STYLE.format(color="#e0a800", weight="bold")
_IDLE_STYLE = _BOX_STYLE.format(color="#d0d0d0", weight="normal")
CACHE_ENTRIES = 8  # bodies kept for instant switching (oldest dropped first); a few MB at most
CacheKey = tuple[str, str, str, str, str, float | None, str | None]


@dataclasses.dataclass
class Play:
    """One play of a side (for the status line and tests)."""

    side: str
    voice: str
    format: str
    replayed: bool
    session: SpeakSession
    metrics: SessionMetrics | None = None


class _Side(QGroupBox):
    """Voice and format of one side."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Side {name}", parent)
        self.name = name
        self.voice = QComboBox()
        self.voice.setEditable(True)  # a voice id the list lacks (a Kokoro blend) can be typed
        self.voice.setMinimumContentsLength(12)
        self.format = QComboBox()
        self.format.addItems([DEFAULT_FORMAT, *FORMATS])
        self.format.setToolTip("default: the format chosen on the Voice tab")
        self.play_button = QPushButton(f"Play {name}")
        self.result = QLabel("—")
        self.result.setWordWrap(True)  # a long result must not widen this side (and the tab, and narrow the plots)
        self.result.setToolTip("The last play of this side: time to first audio and underruns")
        form = QFormLayout(self)
        # Mnemonics: Alt+A / Alt+B reach the two voices; the formats get F and R.
        form.addRow(f"Voice &{name}", self.voice)
        form.addRow(f"&Format {name}" if name == "A" else f"Fo&rmat {name}", self.format)
        form.addRow("Last", self.result)
        form.addRow(self.play_button)
        self.set_active(False)

    def voice_id(self) -> str:
        return combo_voice_id(self.voice)

    def format_choice(self) -> str | None:
        fmt = self.format.currentText()
        return None if fmt == DEFAULT_FORMAT else fmt

    def set_voices(self, choices: list[tuple[str, str]], wanted: str | None) -> None:
        current = wanted or self.voice_id()
        self.voice.clear()
        for vid, label in choices:
            self.voice.addItem(label, vid)
        index = self.voice.findData(current)
        if index >= 0:
            self.voice.setCurrentIndex(index)
        elif current:
            self.voice.setEditText(current)

    def set_active(self, active: bool) -> None:
        self.setStyleSheet(_ACTIVE_STYLE if active else _IDLE_STYLE)


class ABPanel(QWidget):
    """See the module docstring. ``switched(side)`` fires when a side starts playing."""

    switched = Signal(str)
    running_changed = Signal(bool)  # a side started (True) or ended (False): the window's Stop follows it

    def __init__(self, host: PlayerHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.sides = {name: _Side(name) for name in SIDES}
        self.current: Play | None = None
        self.plays: list[Play] = []  # every play since the window opened, oldest first
        self.last_side: str | None = None
        self._cache: dict[CacheKey, bytes] = {}  # insertion-ordered: the first key is the oldest
        self._background: set[asyncio.Future] = set()  # history writes in flight (kept referenced)
        self._generation = 0
        self._done = asyncio.Event()
        self._done.set()

        self.toggle_button = QPushButton("Switch A ⇄ B")
        self.toggle_button.setToolTip("Stop this side and play the other from the start (Space or Ctrl+B)")
        self.toggle_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setEnabled(False)
        self.reload_button = QPushButton("Reload voices")
        self.status = QLabel("Choose two voices (or one voice in two formats); the text is the one on the left.")
        self.status.setWordWrap(True)
        self.now = QLabel("—")
        self.now.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.now.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.now.setFont(font)

        for name, side in self.sides.items():
            side.play_button.clicked.connect(lambda _=False, n=name: self.play(n))
        self.toggle_button.clicked.connect(self.toggle)
        self.stop_button.clicked.connect(self.stop)
        self.reload_button.clicked.connect(self.reload_voices)
        for seq in (QKeySequence(Qt.Key.Key_Space), QKeySequence("Ctrl+B")):
            shortcut = QShortcut(seq, self)
            # Only while the panel has focus: Space must still type spaces in the text box (and in the
            # editable voice boxes, whose line edits claim printable keys first; Ctrl+B works there).
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.toggle)

        row = QHBoxLayout()
        row.addWidget(self.sides["A"], 1)
        row.addWidget(self.sides["B"], 1)
        actions = QHBoxLayout()
        actions.addWidget(self.toggle_button, 1)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.reload_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row)
        layout.addLayout(actions)
        layout.addWidget(self.now)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so the panel itself can hold focus for Space

    # --- voices ---------------------------------------------------------------------------------------
    def reload_voices(self) -> None:
        choices = self.host.voice_choices()
        ids = [vid for vid, _ in choices]
        a, b = self.sides["A"].voice_id(), self.sides["B"].voice_id()
        self.sides["A"].set_voices(choices, a or (ids[0] if ids else None))
        self.sides["B"].set_voices(choices, b or (ids[1] if len(ids) > 1 else (ids[0] if ids else None)))

    def set_side(self, side: str, voice: str, fmt: str | None = None) -> None:
        s = self.sides[side]
        index = s.voice.findData(voice)
        if index >= 0:
            s.voice.setCurrentIndex(index)
        else:
            s.voice.setEditText(voice)
        s.format.setCurrentText(fmt or DEFAULT_FORMAT)

    # --- playing --------------------------------------------------------------------------------------
    def is_playing(self) -> bool:
        return not self._done.is_set()

    def current_session(self) -> SpeakSession | None:
        return None if self.current is None else self.current.session

    @asyncSlot()
    async def toggle(self) -> None:
        """Play the other side (A first if nothing played yet)."""
        await self._play(self.other_side())

    def other_side(self) -> str:
        return "B" if self.last_side == "A" else "A"

    @asyncSlot(str)
    async def play(self, side: str) -> None:
        await self._play(side)

    async def _play(self, side: str) -> None:
        self._generation += 1
        generation = self._generation
        self.last_side = side  # the next toggle goes to the other side even if this one is still starting
        await self.stop_and_wait()
        await self.host.stop_others(self)
        if generation != self._generation or self.host.is_closing():
            return  # a newer press (or the window closing) came while the old side was stopping
        s = self.sides[side]
        text = self.host.current_text()
        if not text.strip():
            self.host.show_error("Type the text to compare in the text box on the left.")
            return
        try:
            options = self.host.speak_options(voice=s.voice_id() or None, fmt=s.format_choice(), text=text)
        except ValueError as exc:
            self.host.show_error(str(exc))
            return
        req = options.request
        key: CacheKey = (req.base_url, req.model, req.voice, req.response_format, req.text, req.speed,
                         req.instructions)
        cached = self._cache.get(key)
        if cached is not None:
            options = dataclasses.replace(options, source=replay_source(cached))
        else:
            options = dataclasses.replace(options, keep_original=True)
        session = SpeakSession(options)
        play = Play(side=side, voice=req.voice, format=req.response_format, replayed=cached is not None,
                    session=session)
        self.current = play
        self.plays.append(play)
        self._show_playing(play)
        self.host.show_session(self)
        self.switched.emit(side)
        self._done.clear()
        self.running_changed.emit(True)
        try:
            play.metrics = await session.run()
        except Exception as exc:  # run() reports provider/device faults in its metrics; this is a bug
            log.exception("A/B play failed unexpectedly")
            self.host.show_error(f"Internal error while playing {side}: {exc}")
        finally:
            self._done.set()
            self._after(play, key)
            self.running_changed.emit(False)

    def _after(self, play: Play, key: CacheKey) -> None:
        metrics = play.metrics
        if play is self.current:
            for side in self.sides.values():
                side.set_active(False)
            self.stop_button.setEnabled(False)
            self.now.setText(f"{play.side} played to the end" if metrics is not None and metrics.completed else "—")
        if metrics is None:
            return
        self.host.show_result(metrics)
        ttfa = "—" if metrics.ttfa_ms is None else f"{metrics.ttfa_ms:.0f} ms"
        source = "cache" if play.replayed else "live"
        self.sides[play.side].result.setText(f"{ttfa} to first audio ({source}), {metrics.underrun_episodes} underruns")
        if metrics.error:
            self.host.show_error(f"{play.side} ({play.voice}): {metrics.error}")
        if play.replayed:
            return  # a replay is not a new Speak: the history already has the live one
        session = play.session
        # Cache only a whole body: a stop during the fetch leaves a partial one (last_byte is set once the
        # fetch returned, which may be before a stop during draining).
        whole = metrics.error is None and getattr(session, "last_byte", None) is not None
        original = session.original_bytes
        if whole and original:
            self._cache[key] = original
            while len(self._cache) > CACHE_ENTRIES:
                del self._cache[next(iter(self._cache))]
        task = asyncio.ensure_future(self._record(session, original, play.side))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record(self, session: SpeakSession, original: bytes, side: str) -> None:
        await record_session(self.host.history, session.options, session.metrics, original,
                             self.host.provider_label(), {"ab_side": side})
        self.host.history_changed()

    def _show_playing(self, play: Play) -> None:
        for name, side in self.sides.items():
            side.set_active(name == play.side)
        self.stop_button.setEnabled(True)
        how = "from the cache" if play.replayed else "live fetch"
        self.now.setText(f"▶ {play.side}: {play.voice} / {play.format}")
        self.status.setText(f"Playing {play.side} ({how}). Space or Ctrl+B switches to {self.other_side()}.")
        self.host.set_status(f"A/B: playing {play.side}, {play.voice} / {play.format} ({how})")

    @asyncSlot()
    async def stop(self) -> None:
        self._generation += 1
        await self.stop_and_wait()

    async def stop_and_wait(self) -> None:
        """Silence the playing side and wait until its device is closed."""
        if self.current is not None and self.is_playing():
            self.current.session.stop()
        await self._done.wait()

    def clear_cache(self) -> None:
        self._cache.clear()
