"""A/B panel: two voices (or two formats) side by side on the same text; one key switches between them.

Side A and side B each name a voice and a format. Play A / Play B, the toggle button, Space or Ctrl+B (while
the panel has focus) stop whatever plays and start the other side from the beginning. Every play goes through
the window's Player with `use_cache=True`: the first play of a side fetches it live and is recorded in the
history like any Speak; once its whole body has arrived the player keeps it in its body cache, and every later
play of that side replays it through the same session path: no request, so switching is instant and both
sides are heard exactly as first received.

Threads: GUI thread only (= the qasync loop thread). Each play is an async slot; the Player stops what plays
(waiting until its device is closed) and lets the newest key press win when presses come faster than
sessions stop.
"""

from __future__ import annotations

import dataclasses
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.formats import FORMATS
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.player import Playback
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.ui.lineup_panel import DEFAULT_FORMAT, PlayerHost
from voicegui.ui.provider_panel import combo_voice_id
from voicegui.ui.safe_text import PlainLabel

log = logging.getLogger(__name__)

SIDES = ("A", "B")
# Both states draw the same frame width so the layout does not jump when the playing side changes.
_BOX_STYLE = ("QGroupBox {{ border: 2px solid {color}; border-radius: 4px; margin-top: 1.2em; padding-top: 4px;"
              " font-weight: {weight}; }}"
              "QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 3px; }}")
_ACTIVE_STYLE = _BOX_STYLE.format(color="#e0a800", weight="bold")
_IDLE_STYLE = _BOX_STYLE.format(color="#d0d0d0", weight="normal")


@dataclasses.dataclass
class Play:
    """One play of a side (for the status line and tests)."""

    side: str
    playback: Playback

    @property
    def voice(self) -> str:
        return self.playback.request.voice

    @property
    def format(self) -> str:
        return self.playback.request.response_format

    @property
    def replayed(self) -> bool:
        return self.playback.replayed

    @property
    def session(self) -> SpeakSession:
        return self.playback.session

    @property
    def metrics(self) -> SessionMetrics | None:
        return self.playback.metrics


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
        self.result = PlainLabel("—")
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

    def __init__(self, host: PlayerHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.sides = {name: _Side(name) for name in SIDES}
        self.current: Play | None = None
        self.plays: list[Play] = []  # every play since the window opened, oldest first
        self.last_side: str | None = None

        self.toggle_button = QPushButton("Switch A ⇄ B")
        self.toggle_button.setToolTip("Stop this side and play the other from the start (Space or Ctrl+B)")
        self.toggle_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setEnabled(False)
        self.reload_button = QPushButton("Reload voices")
        self.status = PlainLabel("Choose two voices (or one voice in two formats); the text is the one on the left.")
        self.status.setWordWrap(True)
        self.now = PlainLabel("—")  # voice names come from the server
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
        return self.current is not None and not self.current.playback.done.is_set()

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
        self.last_side = side  # the next toggle goes to the other side even if this one is still starting
        s = self.sides[side]
        text = self.host.current_text()
        if not text.strip():
            self.host.show_error("Type the text to compare in the text box on the left.")
            return

        def build() -> SpeakOptions:  # after the player stopped what played: the knobs as they are then
            return self.host.speak_options(voice=s.voice_id() or None, fmt=s.format_choice(), text=text)

        try:
            playback = await self.host.player.start(build, kind="ab", title=f"{side} ({s.voice_id()})",
                                                    provider=self.host.provider_label(), extra={"ab_side": side},
                                                    use_cache=True)
        except ValueError as exc:
            self.host.show_error(str(exc))
            return
        if playback is None:
            return  # a newer press (or the window closing) came while the old side was stopping
        play = Play(side=side, playback=playback)
        self.current = play
        self.plays.append(play)
        self._show_playing(play)
        self.switched.emit(side)
        await playback.done.wait()
        self._after(play)

    def _after(self, play: Play) -> None:
        metrics = play.metrics
        if play is self.current:
            for side in self.sides.values():
                side.set_active(False)
            self.stop_button.setEnabled(False)
            self.now.setText(f"{play.side} played to the end" if metrics is not None and metrics.completed else "—")
        if play.playback.failure:
            self.host.show_error(f"{play.side}: {play.playback.failure}")
        if metrics is None:
            return
        ttfa = "—" if metrics.ttfa_ms is None else f"{metrics.ttfa_ms:.0f} ms"
        source = "cache" if play.replayed else "live"
        self.sides[play.side].result.setText(f"{ttfa} to first audio ({source}), {metrics.underrun_episodes} underruns")
        if metrics.error:
            self.host.show_error(f"{play.side} ({play.voice}): {metrics.error}")

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
        await self.stop_and_wait()

    async def stop_and_wait(self) -> None:
        """Silence the playing side and wait until its device is closed."""
        if self.is_playing():
            await self.host.player.stop()

    def clear_cache(self) -> None:
        self.host.player.cache.clear()
