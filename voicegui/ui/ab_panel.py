"""A/B panel: two voices (or two formats) side by side on the same text; one key switches between them.

Side A and side B each name a voice and a format. Play A / Play B stop whatever plays and start that side
from the beginning; the toggle button, Space or Ctrl+B (while the panel has focus) switch to the other side *at
the same audio time* (where the side playing, or stopped last, was; from 0 s once a side has played to its
end). Every play goes through the window's Player with `use_cache=True`: the first play of a side fetches it
live and is recorded in the history like any Speak (a live fetch starts at 0 s: its audio is not there yet);
once its whole body has arrived the player keeps it in its body cache, and every later play of that side
replays it through the same session path: no request, so switching is instant and both sides are heard exactly
as first received. A switch into the middle of a cached side decodes that body once (features/loudness.py
`decode_whole`, milliseconds for a few seconds of audio) and plays it from that time as raw pcm through
stream/replay_source.py, the same path the blind test uses.

Blind test (the "Blind test" box; with "Hide names" unticked the same comparison shows the names from the
start, for a sighted comparison at the same moment): "Start blind test" fetches both sides once, untimed
(which also warms their engines), decodes them and measures their loudness (voicegui/features/blind_ab.py);
they are then "Voice 1" and "Voice 2" in a random order, and nothing on the panel, the status line or the
history names them. Play Voice 1/2, the toggle, Space and Ctrl+B switch between them *at the same audio time*
(the other voice continues where this one was, not from 0 s); with "Match loudness" both play at -23 LUFS
(gain limited by the peak: never clipped). A vote (Voice 1 better / Same / Voice 2 better) is kept in the
votes file (voicegui/features/votes.py; the line-up report shows them) and reveals the names, with each
voice's loudness and gain; "Reveal" shows them without a vote. Blind plays go through the window's Player like
any play (replay_source over the decoded audio: same session path), unrecorded, so the history does not give
the answer away. Choosing other voices or formats ends the blind test.

Each side chooses its voice in an editable combo (a voice id the list lacks, a Kokoro blend, can be typed)
and, under it, the same voice browser as the Voice tab (ui/voice_picker.py: search that never changes the
side's voice, voices grouped by engine and language with readable names, a click or Enter picks, ▶ previews
through the window's player); the two show the same voice. A label longer than the combo would show its end
and lose its first letters, so the cursor is put back to the start after each change.

Threads: GUI thread only (= the qasync loop thread). Each play is an async slot; the Player stops what plays
(waiting until its device is closed) and lets the newest key press win when presses come faster than
sessions stop. The blind test's fetches run as async slots on the same loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.decode.errors import DecodeError
from voicegui.features.blind_ab import RATE, BlindTest, BlindTestError, Contender, fetch_contender
from voicegui.features.loudness import TARGET_LUFS, decode_whole
from voicegui.features.votes import add_vote
from voicegui.formats import FORMATS
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.player import CachedBody, Playback, cache_key
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.ui import theme
from voicegui.ui.lineup_panel import DEFAULT_FORMAT, PlayerHost
from voicegui.ui.provider_panel import combo_voice_id
from voicegui.ui.safe_text import PlainLabel
from voicegui.ui.voice_picker import VoicePicker

log = logging.getLogger(__name__)

SIDES = ("A", "B")
# Both states draw the same frame width so the layout does not jump when the playing side changes.
_BOX_STYLE = ("QGroupBox {{ border: 2px solid {color}; border-radius: 4px; margin-top: 1.2em; padding-top: 4px;"
              " font-weight: {weight}; }}"
              "QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 3px; }}")
_ACTIVE_STYLE = _BOX_STYLE.format(color="#e0a800", weight="bold")
_IDLE_STYLE = _BOX_STYLE.format(color="palette(mid)", weight="normal")  # the theme's: light grey glared in dark


@dataclasses.dataclass
class Play:
    """One play of a side (for the status line and tests)."""

    side: str  # "A"/"B", or "1"/"2" for a blind play
    playback: Playback
    blind: bool = False
    offset_s: float = 0.0  # where in the voice's audio this play started (a switch continues there)
    resumed_format: str | None = None  # a switch into a cached side: its format (what plays is decoded pcm)

    def position_s(self) -> float:
        """The audio time reached: where it started plus what the device has played since."""
        snap = self.playback.session.snapshot(arrays=False)
        rate = snap.sample_rate or RATE
        return self.offset_s + snap.frames_played / rate

    @property
    def voice(self) -> str:
        return self.playback.request.voice

    @property
    def format(self) -> str:
        return self.resumed_format or self.playback.request.response_format

    @property
    def replayed(self) -> bool:
        return self.playback.replayed or self.resumed_format is not None

    @property
    def session(self) -> SpeakSession:
        return self.playback.session

    @property
    def metrics(self) -> SessionMetrics | None:
        return self.playback.metrics


class _Side(QGroupBox):
    """Voice and format of one side."""

    preview_requested = Signal(str)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Side {name}", parent)
        self.name = name
        self.voice = QComboBox()
        self.voice.setEditable(True)  # a voice id the list lacks (a Kokoro blend) can be typed
        self.voice.setMinimumContentsLength(12)
        self.picker = VoicePicker()
        self.picker.filter.setPlaceholderText("Search voices…")  # the box is half a narrow tab wide
        self.picker.voice_chosen.connect(self._on_picked)
        self.picker.preview_requested.connect(self.preview_requested)
        self.voice.currentIndexChanged.connect(lambda _i: self.picker.set_chosen(self.voice_id()))
        self.voice.editTextChanged.connect(lambda _t: self.picker.set_chosen(self.voice_id()))
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
        form.addRow(self.picker)
        form.addRow(f"&Format {name}" if name == "A" else f"Fo&rmat {name}", self.format)
        form.addRow("Last", self.result)
        form.addRow(self.play_button)
        self.set_active(False)

    def voice_id(self) -> str:
        return combo_voice_id(self.voice)

    def format_choice(self) -> str | None:
        fmt = self.format.currentText()
        return None if fmt == DEFAULT_FORMAT else fmt

    def set_voices(self, choices: list[tuple[str, str]], wanted: str | None,
                   names: list[tuple[str, str]] | None = None) -> None:
        """`choices`: (id, label) for the combo; `names`: (id, server's name) for the browser (default:
        `choices`)."""
        current = wanted or self.voice_id()
        self.voice.clear()
        for vid, label in choices:
            self.voice.addItem(label, vid)
        self.select_voice(current)
        self.picker.set_voices(choices if names is None else names, self.voice_id())

    def select_voice(self, vid: str) -> None:
        index = self.voice.findData(vid)
        if index >= 0:
            self.voice.setCurrentIndex(index)
        elif vid:
            self.voice.setEditText(vid)
        self.show_start()

    def _on_picked(self, vid: str) -> None:
        """A click or Enter in the browser: the only way it changes the side's voice."""
        self.select_voice(vid)

    def show_start(self) -> None:
        """Scroll the voice box's text to its start: a label wider than the box keeps its first letters."""
        edit = self.voice.lineEdit()
        if edit is not None and not edit.hasFocus():
            edit.setCursorPosition(0)

    def set_active(self, active: bool) -> None:
        self._active = active
        self.setStyleSheet(_ACTIVE_STYLE if active else _IDLE_STYLE)

    def restyle(self) -> None:
        """The theme changed: a box with a style sheet kept the old palette for itself and everything in it
        (white combos and lists in a dark window) until its sheet is set again."""
        self.setStyleSheet("")
        self.set_active(self._active)


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
        self._pos = 0.0  # the audio time the last A/B play reached (a switch continues there)
        self._decoded: dict[tuple[object, ...], np.ndarray] = {}  # cached bodies decoded for a switch, by request

        self.toggle_button = QPushButton("Switch A ⇄ B")
        self.toggle_button.setToolTip("Stop this side and play the other at the same moment (Space or Ctrl+B); "
                                      "Play A / Play B start a side from the beginning")
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

        # --- blind test ---
        self.blind: BlindTest | None = None
        self._blind_pos = 0.0  # the audio time the last blind play reached (a switch continues there)
        self.start_blind_button = QPushButton("Start blind test")
        self.start_blind_button.setToolTip("Fetch both sides once and hide which is which: Voice 1 and Voice 2 "
                                           "in a random order")
        self.hide_names = QCheckBox("Hide names")
        self.hide_names.setChecked(True)
        self.hide_names.setToolTip("Unticked: the same comparison (switching at the same moment, matched "
                                   "loudness) with the names shown; votes are then kept as not blind")
        self.match_loudness = QCheckBox(f"Match loudness ({TARGET_LUFS:g} LUFS)")
        self.match_loudness.setChecked(True)
        self.match_loudness.setToolTip("Play both voices at the same EBU R128 loudness (never clipped), so the "
                                       "louder one does not win for being louder")
        self.slot_buttons = {slot: QPushButton(f"Play Voice {slot}") for slot in ("1", "2")}
        self.vote_buttons = {"1": QPushButton("Voice 1 better"), "same": QPushButton("Same"),
                             "2": QPushButton("Voice 2 better")}
        self.reveal_button = QPushButton("Reveal")
        self.blind_result = PlainLabel("Start a blind test to compare the two sides without knowing which is which.")
        self.blind_result.setWordWrap(True)
        self.start_blind_button.clicked.connect(self.start_blind)
        self.match_loudness.toggled.connect(self._on_match_toggled)
        for slot, button in self.slot_buttons.items():
            button.clicked.connect(lambda _=False, s=slot: self.play_blind(s))
        for choice, button in self.vote_buttons.items():
            button.clicked.connect(lambda _=False, c=choice: self.vote(c))
        self.reveal_button.clicked.connect(self.reveal)
        blind_box = QGroupBox("Blind test")
        blind_layout = QVBoxLayout(blind_box)
        # Start and Reveal on one row, the boxes on the next: in one row with the votes they were cut off in a
        # 800x600 window.
        first = QHBoxLayout()
        first.addWidget(self.start_blind_button)
        first.addStretch(1)
        first.addWidget(self.reveal_button)
        options = QHBoxLayout()
        options.addWidget(self.hide_names)
        options.addWidget(self.match_loudness, 1)
        plays = QHBoxLayout()
        for button in self.slot_buttons.values():
            plays.addWidget(button)
        votes = QHBoxLayout()
        for button in self.vote_buttons.values():
            votes.addWidget(button)
        blind_layout.addLayout(first)
        blind_layout.addLayout(options)
        blind_layout.addLayout(plays)
        blind_layout.addLayout(votes)
        blind_layout.addWidget(self.blind_result)
        self._set_blind_enabled(False)

        for name, side in self.sides.items():
            side.play_button.clicked.connect(lambda _=False, n=name: self.play(n))
            side.preview_requested.connect(self.host.preview)
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
        self._sides_row = row  # side by side where they fit, else one above the other (resizeEvent)
        actions = QHBoxLayout()
        actions.addWidget(self.toggle_button, 1)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.reload_button)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(row)
        layout.addLayout(actions)
        layout.addWidget(self.now)
        layout.addWidget(self.status)
        layout.addWidget(blind_box)
        layout.addStretch(1)
        # In a short window (800x600) the tab is shorter than the panel: scroll rather than squeeze the
        # reveal's lines on top of each other.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        self._scroll, self._content = scroll, content
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        for side in self.sides.values():  # other voices or formats: the blind test no longer compares them
            side.voice.currentTextChanged.connect(self._end_blind)
            side.format.currentTextChanged.connect(self._end_blind)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # so the panel itself can hold focus for Space
        theme.controller().changed.connect(self._on_theme)

    def _on_theme(self, _scheme: str) -> None:
        for side in self.sides.values():
            side.restyle()

    # --- voices ---------------------------------------------------------------------------------------
    def reload_voices(self) -> None:
        choices, names = self.host.voice_choices(), self.host.voice_names()
        ids = [vid for vid, _ in choices]
        a, b = self.sides["A"].voice_id(), self.sides["B"].voice_id()
        self.sides["A"].set_voices(choices, a or (ids[0] if ids else None), names)
        self.sides["B"].set_voices(choices, b or (ids[1] if len(ids) > 1 else (ids[0] if ids else None)), names)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # Side by side only where both fit: at 800x600 the tab is ~370 px wide, and two squeezed sides cut
        # their combos and buttons off at the right.
        wanted = sum(side.minimumSizeHint().width() for side in self.sides.values()) + 24
        self._sides_row.setDirection(QBoxLayout.Direction.LeftToRight if event.size().width() >= wanted
                                     else QBoxLayout.Direction.TopToBottom)
        if self.blind is not None:  # keep the blind test's buttons and verdict in view in a short window
            QTimer.singleShot(0, self, self._keep_blind_in_view)  # after the scroll area has its new size

    def _keep_blind_in_view(self) -> None:
        # The sides may have just gone one above the other (resizeEvent): lay the content out first, or the
        # scroll goes to where the verdict was before.
        content = self._content
        layout = content.layout()
        if layout is not None:
            layout.activate()
        content.resize(self._scroll.viewport().width(), max(content.minimumSizeHint().height(),
                                                            self._scroll.viewport().height()))
        self._scroll.ensureWidgetVisible(self.blind_result)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        for side in self.sides.values():  # laid out at their real width now: show the labels' starts
            side.show_start()

    def set_side(self, side: str, voice: str, fmt: str | None = None) -> None:
        s = self.sides[side]
        s.select_voice(voice)
        s.format.setCurrentText(fmt or DEFAULT_FORMAT)

    # --- playing --------------------------------------------------------------------------------------
    def is_playing(self) -> bool:
        return self.current is not None and not self.current.playback.done.is_set()

    def current_session(self) -> SpeakSession | None:
        return None if self.current is None else self.current.session

    @asyncSlot()
    async def toggle(self) -> None:
        """Play the other side (A first if nothing played yet); in a blind test, the other voice at the same
        audio time."""
        if self.blind is not None:
            await self._play_blind(self.other_side())
            return
        previous = self.current
        if previous is not None and not previous.blind and not previous.playback.done.is_set():
            self._pos = previous.position_s()  # read before the player stops it
        await self._play(self.other_side(), at_s=self._pos)

    def other_side(self) -> str:
        if self.blind is not None:
            return "2" if self.last_side == "1" else "1"
        return "B" if self.last_side == "A" else "A"

    @asyncSlot(str)
    async def play(self, side: str) -> None:
        await self._play(side)

    async def _play(self, side: str, at_s: float = 0.0) -> None:
        """Play `side` from the beginning, or from `at_s` seconds when its whole body is cached."""
        self.last_side = side  # the next toggle goes to the other side even if this one is still starting
        s = self.sides[side]
        text = self.host.current_text()
        if not text.strip():
            self.host.show_error("Type the text to compare in the text box on the left.")
            return

        def build() -> SpeakOptions:  # after the player stopped what played: the knobs as they are then
            return self.host.speak_options(voice=s.voice_id() or None, fmt=s.format_choice(), text=text)

        try:
            resume = self._resume_from(build(), at_s) if at_s > 0 else None
            if resume is not None:
                options, start_s, _fmt = resume
                playback = await self.host.player.start(options, kind="ab", title=f"{side} ({s.voice_id()})",
                                                        record=False, provider=self.host.provider_label(),
                                                        extra={"ab_side": side})
            else:
                start_s = 0.0
                playback = await self.host.player.start(build, kind="ab", title=f"{side} ({s.voice_id()})",
                                                        provider=self.host.provider_label(),
                                                        extra={"ab_side": side}, use_cache=True)
        except ValueError as exc:
            self.host.show_error(str(exc))
            return
        if playback is None:
            return  # a newer press (or the window closing) came while the old side was stopping
        play = Play(side=side, playback=playback, offset_s=start_s,
                    resumed_format=None if resume is None else resume[2])
        self.current = play
        self.plays.append(play)
        self._show_playing(play)
        self.switched.emit(side)
        await playback.done.wait()
        self._after(play)

    def _resume_from(self, options: SpeakOptions, at_s: float) -> tuple[SpeakOptions, float, str] | None:
        """`options` changed to play the side's cached body from `at_s` seconds (0 s when that is past its end),
        with the start time and the side's own format; None when the body is not cached (not fetched whole
        yet, or a long text in pieces): it is then fetched live from the beginning."""
        request = options.request
        cached = self.host.player.cache.get(request)
        if cached is None or options.continuation:
            return None
        samples = self._decode(request.response_format, cache_key(request), cached)
        if samples is None:
            return None
        start_s = at_s if at_s < len(samples) / RATE else 0.0
        first = min(int(round(start_s * RATE)), len(samples))
        body = (np.clip(samples[first:], -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()
        pcm = dataclasses.replace(request, response_format="pcm")
        return (dataclasses.replace(options, request=pcm, source=replay_source(body), pcm_rate=RATE,
                                    keep_original=False), start_s, request.response_format)

    def _decode(self, fmt: str, key: tuple[object, ...], cached: CachedBody) -> np.ndarray | None:
        """The cached body as float32 mono at RATE, decoded once per request (two sides: two kept)."""
        samples = self._decoded.get(key)
        if samples is not None:
            return samples
        headers = {} if cached.pcm_rate is None else {"x-sample-rate": str(cached.pcm_rate)}
        try:
            samples = decode_whole(cached.body, fmt, headers, RATE)
        except DecodeError as exc:  # it played before, so this is unexpected: say it and play from 0 s
            log.warning("A/B: the cached %s body could not be decoded for a switch (%s); fetched again", fmt, exc)
            return None
        while len(self._decoded) >= len(SIDES):
            self._decoded.pop(next(iter(self._decoded)))
        self._decoded[key] = samples
        return samples

    def _after(self, play: Play) -> None:
        if play.blind:
            self._after_blind(play)
            return
        metrics = play.metrics
        if metrics is not None and play is self.current:
            self._pos = 0.0 if metrics.completed else play.offset_s + metrics.audio_played_s
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
        how = "from the cache" if play.replayed else "live fetch, from the beginning: its audio is not here yet"
        at = f" from {_clock(play.offset_s)}" if play.offset_s else ""
        self.now.setText(f"▶ {play.side}: {play.voice} / {play.format}{at}")
        self.status.setText(f"Playing {play.side} ({how}). Space or Ctrl+B switches to {self.other_side()} at the "
                            "same moment.")
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
        self._decoded.clear()

    # --- blind test -----------------------------------------------------------------------------------
    def _set_blind_enabled(self, on: bool) -> None:
        for button in (*self.slot_buttons.values(), *self.vote_buttons.values(), self.reveal_button):
            button.setEnabled(on)

    def _end_blind(self, *_args: object) -> None:
        if self.blind is None:
            return
        self.blind = None
        self.last_side = None
        self._set_blind_enabled(False)
        self.blind_result.setText("The voices changed: start a new blind test to compare them.")

    def _on_match_toggled(self, on: bool) -> None:
        if self.blind is not None:
            self.blind.matched = on  # from the next play on

    @asyncSlot()
    async def start_blind(self) -> None:
        await self.start_blind_test()

    async def start_blind_test(self, rng: random.Random | None = None) -> BlindTest | None:
        """Fetch both sides (untimed), decode them, hide them behind random names. `rng`: a random.Random
        (tests); None: the system's randomness."""
        text = self.host.current_text()
        if not text.strip():
            self.host.show_error("Type the text to compare in the text box on the left.")
            return None
        await self.stop_and_wait()
        try:
            options = {name: self.host.speak_options(voice=s.voice_id() or None, fmt=s.format_choice(), text=text)
                       for name, s in self.sides.items()}
        except ValueError as exc:
            self.host.show_error(str(exc))
            return None
        if any(o.continuation for o in options.values()):
            self.host.show_error("The blind test compares one request's worth of text (4096 characters); shorten "
                                 "the text in the box on the left.")
            return None
        fmts = {o.request.response_format for o in options.values()}
        labels = {name: o.request.voice if len(fmts) == 1 else f"{o.request.voice} / {o.request.response_format}"
                  for name, o in options.items()}
        if labels["A"] == labels["B"]:
            self.host.show_error("Side A and side B are the same voice and format: choose two voices (or one "
                                 "voice in two formats) for the blind test.")
            return None
        self.start_blind_button.setEnabled(False)
        self.blind_result.setText("Fetching both voices…")
        try:
            a, b = await asyncio.gather(*(fetch_contender(name, options[name].request, labels[name])
                                          for name in ("A", "B")))
        except BlindTestError as exc:
            self.host.show_error(str(exc))
            self.blind_result.setText("The blind test could not start (see the message at the top).")
            return None
        finally:
            self.start_blind_button.setEnabled(True)
        self._end_blind()
        self.blind = BlindTest(a, b, rng, matched=self.match_loudness.isChecked(), text=text)
        self._blind_pos, self.last_side = 0.0, None
        self._set_blind_enabled(True)
        if self.hide_names.isChecked():
            self.blind_result.setText("Voice 1 and Voice 2 are side A and side B in a random order. Listen to "
                                      "both (Space switches at the same moment), then vote.")
            self.host.set_status("A/B: blind test ready")
        else:
            self.blind.reveal()
            self._show_reveal("Names shown (Hide names is off): Space switches at the same moment.")
        self._scroll.ensureWidgetVisible(self.blind_result)  # the play and vote buttons above it too
        return self.blind

    @asyncSlot(str)
    async def play_blind(self, slot: str) -> None:
        await self._play_blind(slot)

    async def _play_blind(self, slot: str) -> None:
        test = self.blind
        if test is None:
            return
        previous = self.current
        if previous is not None and previous.blind and not previous.playback.done.is_set():
            self._blind_pos = previous.position_s()  # read before the player stops it
        self.last_side = slot
        start_s = test.start_at(slot, self._blind_pos)
        body = test.body(slot, start_s)

        def build() -> SpeakOptions:
            base = self.host.speak_options(text=test.text)
            # The decoded audio, as raw pcm at RATE, through the same session path as any play.
            request = dataclasses.replace(base.request, response_format="pcm", voice=f"Voice {slot}")
            return dataclasses.replace(base, request=request, source=replay_source(body), pcm_rate=RATE,
                                       continuation=(), keep_original=False)

        try:
            playback = await self.host.player.start(build, kind="ab-blind", title=f"Voice {slot}", record=False,
                                                    provider=self.host.provider_label())
        except ValueError as exc:
            self.host.show_error(str(exc))
            return
        if playback is None:
            return
        play = Play(side=slot, playback=playback, blind=True, offset_s=start_s)
        self.current = play
        self.plays.append(play)
        for side in self.sides.values():
            side.set_active(False)
        self.stop_button.setEnabled(True)
        self.now.setText(f"▶ {test.name(slot)} from {_clock(start_s)}")
        self.status.setText(f"Playing Voice {slot}. Space or Ctrl+B switches to Voice {self.other_side()} at the "
                            "same moment.")
        self.host.set_status(f"A/B: blind test, playing Voice {slot}")
        self.switched.emit(slot)
        await playback.done.wait()
        self._after(play)

    def _after_blind(self, play: Play) -> None:
        metrics = play.metrics
        if metrics is not None:
            self._blind_pos = 0.0 if metrics.completed else play.offset_s + metrics.audio_played_s
        if play is self.current:
            self.stop_button.setEnabled(False)
            self.now.setText(f"Voice {play.side} played to the end" if metrics is not None and metrics.completed
                             else f"Voice {play.side} stopped at {_clock(self._blind_pos)}")
            self.status.setText(f"Space or Ctrl+B plays Voice {self.other_side()} from {_clock(self._blind_pos)}.")
        if play.playback.failure:
            self.host.show_error(f"Voice {play.side}: {play.playback.failure}")
        elif metrics is not None and metrics.error:
            self.host.show_error(f"Voice {play.side}: {metrics.error}")

    def vote(self, choice: str) -> None:
        """Record the preference ("1", "2" or "same"), keep it in the votes file and reveal the names."""
        if self.blind is None:
            return
        vote = self.blind.vote(choice)
        try:
            add_vote(vote)  # a few KB: fine on the GUI thread
        except OSError as exc:
            self.host.show_error(f"Could not keep the vote: {exc} (check that the config directory is writable)")
        self._show_reveal(f"Your vote: {vote.sentence()}" + ("" if vote.blind else " (after the reveal)") + ".")

    def reveal(self) -> None:
        if self.blind is not None:
            self.blind.reveal()
            self._show_reveal("Revealed without a vote.")

    def _show_reveal(self, head: str) -> None:
        test = self.blind
        assert test is not None
        lines = [head]
        for slot in ("1", "2"):
            lines.append(f"Voice {slot} was side {test.contender(slot).side}: {test.contender(slot).label}, "
                         f"{_loudness(test.contender(slot), test.matched)}")
        self.blind_result.setText("\n".join(lines))
        self._scroll.ensureWidgetVisible(self.blind_result)
        cur = self.current
        if cur is not None and cur.blind and not cur.playback.done.is_set():
            self.now.setText(f"▶ {test.name(cur.side)}")
        self.host.set_status("A/B: " + head)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def _loudness(c: Contender, matched: bool) -> str:
    measured = c.loudness.describe()
    if not matched or c.loudness.lufs is None:
        return measured
    return f"{measured}, played {c.gain_db:+.1f} dB"
