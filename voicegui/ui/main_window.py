"""MainWindow: text, provider panel, Speak/Stop, live plots, the TTFA readout, tuning, network simulator,
the Realtime transcript and an error banner; settings restored at start and saved at close.

Threads: GUI thread only, which under qasync is also the asyncio loop's thread. Everything that plays goes
through the window's one `Player` (voicegui/stream/player.py): Speak is an async slot that asks the player
to start the next Speak; the player stops what plays (waiting until its device is closed), lets the newest
request win, records finished Speaks through its history hook, and tells the window (on_state / on_started /
on_finished) what to render. The PortAudio callback thread is never touched from here; the plots and
panels poll the player's current session's ``snapshot()`` on timers.

Text longer than one request takes (4096 characters) is cut at sentence ends (text.split_for_request)
and the pieces are fetched one after another into one session (SpeakOptions.continuation): one ring, one
device stream, one gapless utterance.

History, line-up and A/B live in their own tabs (ui/history_panel.py, ui/lineup_panel.py, ui/ab_panel.py)
and play through the same player, so only one thing plays at a time and the plots follow whatever plays. A
replay from history is a Speak whose SpeakOptions.source feeds the cached bytes instead of a request. The
window's Stop (and Esc) stops whatever plays and is enabled while the player is busy or a line-up runs.

The built-in server (BuiltinServer) is started and stopped by ui/app.py; the window only reads its
URL/token and sets its ``shaping`` from the network simulator (a plain attribute swap, read by the
server's thread once per request).

The API key lives in its line edit, the KeyStore (keyring or memory) and the request object of the running
Speak: it is never logged, written to the settings file or shown.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStyle,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui import settings as settings_mod
from voicegui.features.history import HistoryError, HistoryStore, history_hook
from voicegui.providers import BUILTIN
from voicegui.settings import KeyStore, Settings
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.output import OutputConfig
from voicegui.stream.player import Playback, Player, PlayerState
from voicegui.stream.realtime import transcript_differs
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.text import split_for_request
from voicegui.ui.ab_panel import ABPanel
from voicegui.ui.history_panel import MB, HistoryPanel
from voicegui.ui.lineup_panel import LineupPanel
from voicegui.ui.panels import NetworkPanel, TtfaPanel, TuningPanel
from voicegui.ui.plots import LivePlots
from voicegui.ui.provider_panel import ProviderPanel

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`: longer text is sent as several requests
MAX_TEXT_CHARS = 200_000  # beyond this, something was pasted by mistake
WINDOW_KINDS = ("speak", "replay")  # Playbacks the window itself started (the panels report their own)


class ErrorBanner(QFrame):
    """A non-modal message strip at the top of the window with a close button; the app keeps working."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#errorBanner { background: #fdecea; border: 1px solid #f5c2c0; border-radius: 4px; }"
                           "#errorBanner QLabel { color: #611a15; }")
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(20, 20))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text()


class MainWindow(QMainWindow):
    """The voicegui window. ``closed`` is emitted once the close handler has released the device.

    `builtin`: the app's BuiltinServer if it is already running (else call set_builtin() once it is).
    Settings come from settings.load() ($VOICEGUI_CONFIG_DIR or the platform config dir).
    """

    closed = Signal()
    session_finished = Signal(object)  # SessionMetrics of each Speak that ran, for listeners and tests

    def __init__(self, builtin: Any = None, keys: KeyStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("voicegui")
        self._closing = False
        self._released = False  # shutdown() finished: the device is free, closing is immediate
        self._closed_emitted = False
        self._builtin: Any = None
        loaded = settings_mod.load()
        self.settings: Settings = loaded.settings
        self.keys = keys or KeyStore()
        history_problem: str | None = None
        try:
            self.history = HistoryStore(max_bytes=int(self.settings.history_max_mb * MB))
        except OSError as exc:
            # An unreadable cache must not cost the window: keep this run's history in a temporary place.
            history_problem = f"The history cache cannot be read ({exc}); this session's history is temporary."
            self.history = HistoryStore(Path(tempfile.mkdtemp(prefix="voicegui-history-")),
                                        max_bytes=int(self.settings.history_max_mb * MB))
        self.player = Player(history_hook=history_hook(self.history, on_recorded=lambda _p: self.history_changed()))
        self.player.on_state(self._on_player_state)
        self.player.on_started(self._on_started)
        self.player.on_finished(self._on_finished)

        self.banner = ErrorBanner()

        # --- text ---
        self.text_edit = QPlainTextEdit()
        self.text_edit.setPlaceholderText("Type or paste the text to speak, then press Speak (Ctrl+Enter).")
        self.text_edit.setTabChangesFocus(True)
        self.text_label = QLabel("&Text")
        self.text_label.setBuddy(self.text_edit)
        self.char_count = QLabel()
        self.char_count.setAlignment(Qt.AlignmentFlag.AlignRight)

        # --- provider ---
        self.provider_panel = ProviderPanel(self.settings, self.keys)
        pp = self.provider_panel
        # Short names for the fields tests and the rest of the window use.
        self.base_url, self.api_key, self.model, self.voice, self.format = (
            pp.base_url, pp.api_key, pp.model, pp.voice, pp.format)

        # --- actions ---
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
        self.speak_button.clicked.connect(self.speak)
        self.stop_button.clicked.connect(self.stop)
        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(seq), self, self.speak_button.click)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop)
        actions = QHBoxLayout()
        actions.addWidget(self.speak_button)
        actions.addWidget(self.stop_button)
        actions.addWidget(self.speak_reason, 1)
        actions.addWidget(self.char_count)

        # --- transcript (Realtime models say what they read) ---
        self.transcript = QPlainTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setTabChangesFocus(True)
        self.transcript.setPlaceholderText("What the Realtime model says it read appears here.")
        self.transcript.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        self.transcript_flag = QLabel("The model's reading differs from the text.")
        self.transcript_flag.setStyleSheet("color: #c62828; font-weight: bold;")
        self.transcript_flag.hide()
        self.transcript_box = QGroupBox("T&ranscript (Realtime)")
        tlayout = QVBoxLayout(self.transcript_box)
        tlayout.addWidget(self.transcript)
        tlayout.addWidget(self.transcript_flag)
        self.transcript_box.setVisible(pp.is_realtime())

        # --- live views and knobs ---
        self.plots = LivePlots(lambda: self.player.session)
        self.ttfa = TtfaPanel(lambda: self.player.session)
        self.tuning = TuningPanel()
        self.network = NetworkPanel()
        self._restore_knobs()
        self.history_panel = HistoryPanel(self.history, self.settings.history_max_mb)
        self.history_panel.replay_requested.connect(self.replay)
        self.history_panel.error.connect(self.show_error)
        self.lineup_panel = LineupPanel(self)
        self.ab_panel = ABPanel(self)
        # Stop must stay enabled between a line-up's voices too, while the player is idle for a moment.
        self.lineup_panel.running_changed.connect(lambda _running: self._update_speak_enabled())

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.text_label)
        left_layout.addWidget(self.text_edit, 2)
        left_layout.addLayout(actions)
        left_layout.addWidget(pp.warning)
        left_layout.addWidget(self.transcript_box)
        left_layout.addWidget(self.plots, 3)

        self.tabs = QTabWidget()
        self.tabs.addTab(self._scrolled(self.provider_panel), "&Voice")
        playback_page = QWidget()
        playback_layout = QVBoxLayout(playback_page)
        playback_layout.setContentsMargins(0, 0, 0, 0)
        playback_layout.addWidget(self.tuning)
        playback_layout.addWidget(self.network)
        playback_layout.addStretch(1)
        self.tabs.addTab(self._scrolled(playback_page), "Pl&ayback")
        self.tabs.addTab(self.history_panel, "&History")
        self.tabs.addTab(self.lineup_panel, "&Line-up")
        self.tabs.addTab(self.ab_panel, "A/&B")
        self.tabs.currentChanged.connect(self._on_tab)
        # The TTFA readout stays in view under the tabs: it is what a Speak is judged by.
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.tabs)
        right.addWidget(self.ttfa)
        right.setStretchFactor(0, 1)
        right.setStretchFactor(1, 0)  # the readout keeps its natural height; the tabs take the rest
        right.setChildrenCollapsible(False)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self.banner)
        outer.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.status_line = QLabel("Ready")
        self.status_line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_line, 1)
        self.resize(1280, 800)
        # Plots get the larger share: an engineer tuning buffers watches them; the form needs ~480 px.
        splitter.setSizes([780, 480])
        if self.settings.window_geometry:
            self.restoreGeometry(QByteArray.fromBase64(self.settings.window_geometry.encode("ascii")))

        self.transcript_timer = QTimer(self)
        self.transcript_timer.setInterval(250)  # text: ~4 Hz is as fast as anyone reads
        self.transcript_timer.timeout.connect(self._refresh_transcript)
        self.transcript_timer.start()

        self.text_edit.textChanged.connect(self._update_speak_enabled)
        pp.model_changed.connect(lambda _m: self.transcript_box.setVisible(pp.is_realtime()))
        pp.provider_changed.connect(self._on_provider_changed)
        self.network.changed.connect(self._apply_shaping)
        self._on_provider_changed(pp.provider_id())
        self._update_speak_enabled()
        if builtin is not None:
            self.set_builtin(builtin)
        if loaded.message:
            self.show_error(loaded.message)
        if history_problem:
            self.show_error(history_problem)

    @staticmethod
    def _scrolled(widget: QWidget) -> QScrollArea:
        """Panels taller than a small window scroll instead of squeezing their fields."""
        area = QScrollArea()
        area.setWidget(widget)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        return area

    def _restore_knobs(self) -> None:
        s = self.settings
        self.tuning.set_knobs(chunk_bytes=s.chunk_bytes, prebuffer_ms=s.prebuffer_ms, max_buffer_s=s.max_buffer_s,
                              latency=s.latency, blocksize=s.blocksize)
        self.tuning.set_device(s.device)
        self.tuning.volume.setValue(int(round(s.volume * 100)))
        self.network.set_values(s.sim_first_byte_delay_ms, s.sim_throughput_x, s.sim_jitter_ms)

    # --- built-in server, settings --------------------------------------------------------------------
    def set_builtin(self, server: Any) -> None:
        """The app's BuiltinServer runs: offer its voices; the simulator now drives its shaping."""
        self._builtin = server
        self.provider_panel.set_builtin(server)
        self._apply_shaping(self.network.shaping())
        self._update_speak_enabled()

    def set_builtin_error(self, message: str) -> None:
        self.provider_panel.set_builtin_error(message)
        if self.provider_panel.provider_id() == BUILTIN:
            self.show_error(message)

    def _apply_shaping(self, shaping: Any) -> None:
        if self._builtin is not None:
            self._builtin.shaping = shaping

    def _on_provider_changed(self, pid: str) -> None:
        self.network.setEnabled(pid == BUILTIN)
        self.network.note.setText("Applies to the built-in provider only." if pid == BUILTIN else
                                  "Only the built-in provider can be slowed down: choose it on the Voice tab.")

    def collect_settings(self) -> Settings:
        """The settings as shown now (everything but the API key)."""
        s = self.settings
        self.provider_panel.store_into(s)
        try:
            tuning = self.tuning.values()
            s.latency = tuning.latency
        except ValueError:
            tuning = None  # an invalid latency typed in: keep the last good one
        if tuning is not None:
            s.chunk_bytes, s.prebuffer_ms, s.max_buffer_s = tuning.chunk_bytes, tuning.prebuffer_ms, tuning.max_buffer_s
            s.blocksize, s.device, s.volume = tuning.blocksize, tuning.device, tuning.volume
        s.sim_first_byte_delay_ms = float(self.network.first_byte_ms.value())
        s.sim_throughput_x = self.network.throughput()
        s.sim_jitter_ms = float(self.network.jitter_ms.value())
        s.history_max_mb = float(self.history_panel.max_mb.value())
        s.window_geometry = bytes(self.saveGeometry().toBase64().data()).decode("ascii")
        return s

    def save_settings(self) -> None:
        """Write the settings file; a failure is shown, not raised (the window keeps working)."""
        try:
            settings_mod.save(self.collect_settings())
        except (OSError, ValueError) as exc:
            log.warning("could not save settings: %s", exc)
            self.show_error(f"Could not save the settings: {exc}")

    # --- state -------------------------------------------------------------------------------------------
    @property
    def session(self) -> SpeakSession | None:
        """The session of whatever plays now (or played last): what the plots and the readout show."""
        return self.player.session

    @property
    def playback(self) -> Playback | None:
        return self.player.current

    @property
    def playbacks(self) -> list[Playback]:
        """The player's recent Playbacks, oldest first (Speaks, replays, A/B sides, line-up voices)."""
        return list(self.player.recent)

    def is_closing(self) -> bool:
        return self._closing

    def is_speaking(self) -> bool:
        """The window's own Speak (or history replay) is playing."""
        cur = self.player.current
        return cur is not None and cur.kind in WINDOW_KINDS and not cur.done.is_set()

    def _speak_block_reason(self) -> str | None:
        text = self.text_edit.toPlainText()
        if not text.strip():
            return "Nothing to speak: type some text."
        if len(text) > MAX_TEXT_CHARS:
            return f"Text is longer than {MAX_TEXT_CHARS} characters: shorten it to speak it."
        return None

    def _update_speak_enabled(self) -> None:
        n = len(self.text_edit.toPlainText())
        self.char_count.setText(f"{n} / {MAX_INPUT_CHARS}" if n <= MAX_INPUT_CHARS
                                else f"{n} characters: sent in pieces of ≤ {MAX_INPUT_CHARS}")
        self.char_count.setStyleSheet("color: #c62828; font-weight: bold;" if n > MAX_TEXT_CHARS else "")
        reason = self._speak_block_reason()
        self.speak_reason.setText(reason or "")
        self.speak_button.setToolTip(reason or "Speak the text (Ctrl+Enter)")
        starting = self.player.state is PlayerState.STARTING
        self.speak_button.setEnabled(reason is None and not starting and not self._closing)
        lineup = getattr(self, "lineup_panel", None)  # None while the window is being built
        self.stop_button.setEnabled(self.player.is_busy() or (lineup is not None and lineup.is_running()))

    def set_status(self, text: str) -> None:
        self.status_line.setText(text)

    # --- Speak / Stop -------------------------------------------------------------------------------------
    def _options(self, text: str | None = None, voice: str | None = None, fmt: str | None = None) -> SpeakOptions:
        """The request(s) (one per ≤4096-character piece) and knobs for the next Speak; raises ValueError
        with a message for the user. text/voice/fmt: instead of the ones shown (line-up, A/B)."""
        tuning = self.tuning.values()
        pp = self.provider_panel
        base_url, key = pp.endpoint()
        model, voice = pp.model_id(), voice or pp.voice_id()
        if not model:
            raise ValueError("Choose a model.")
        if not voice:
            raise ValueError("Choose a voice.")
        text = self.text_edit.toPlainText() if text is None else text
        pieces = [text] if len(text) <= MAX_INPUT_CHARS else split_for_request(text, MAX_INPUT_CHARS)
        output = OutputConfig(device=tuning.device, latency=tuning.latency, blocksize=tuning.blocksize,
                              volume=tuning.volume)
        requests = [SpeechRequest(
                base_url=base_url,
                api_key=key or "none",  # the OpenAI client insists on a key; local servers ignore it
                model=model,
                voice=voice,
                text=piece,
                response_format=fmt or pp.response_format(),
                speed=pp.speed_value(),
                instructions=pp.instructions_value(),
                chunk_bytes=tuning.chunk_bytes,
            ) for piece in pieces]
        # One session for all pieces: fetched one after another into the same ring and device (gapless).
        return SpeakOptions(
            request=requests[0],
            continuation=tuple(requests[1:]),
            prebuffer_ms=tuning.prebuffer_ms,
            max_buffer_s=tuning.max_buffer_s,
            output=output,
            keep_original=True,  # for the history cache
        )

    @asyncSlot()
    async def speak(self) -> None:
        """Stop whatever is playing, then start one new Speak (the newest click wins)."""
        if self._closing or self._speak_block_reason() is not None:
            return
        await self._start(self._options, kind="speak")

    @asyncSlot(str)
    async def replay(self, entry_id: str) -> None:
        """Play a history entry again from the cache: the same session path and plots, no request."""
        if self._closing:
            return
        try:
            entry = self.history.get(entry_id)
            data = await asyncio.to_thread(self.history.original, entry_id)
        except (HistoryError, OSError) as exc:
            self.show_error(str(exc))
            return

        def build() -> SpeakOptions:
            # The current knobs apply: replaying the same bytes under other buffer settings is a fair test.
            tuning = self.tuning.values()
            request = SpeechRequest(base_url=entry.base_url, api_key="none", model=entry.model, voice=entry.voice,
                                    text=entry.text, response_format=entry.format, speed=entry.speed,
                                    chunk_bytes=tuning.chunk_bytes)
            output = OutputConfig(device=tuning.device, latency=tuning.latency, blocksize=tuning.blocksize,
                                  volume=tuning.volume)
            return SpeakOptions(request=request, prebuffer_ms=tuning.prebuffer_ms, max_buffer_s=tuning.max_buffer_s,
                                output=output, keep_original=True, source=replay_source(data))

        await self._start(build, kind="replay", record=False)

    async def _start(self, build: Callable[[], SpeakOptions], kind: str, record: bool = True) -> None:
        """Ask the player for a Speak; `build()` runs once what played has stopped (its ValueError is shown)."""

        def checked() -> SpeakOptions:
            options = build()
            self.banner.hide()
            if record:
                self.provider_panel.store_key()
            return options

        try:
            await self.player.start(checked, kind=kind, record=record, provider=self.provider_panel.provider_id())
        except ValueError as exc:
            self.show_error(str(exc))

    def _on_player_state(self, _state: PlayerState) -> None:
        self._update_speak_enabled()

    def _on_started(self, playback: Playback) -> None:
        """Whatever starts (a Speak, a replay, an A/B side, a line-up voice): the plots and readout start afresh."""
        self.plots.reset()
        self.ttfa.reset()
        self.transcript.clear()
        self.transcript_flag.hide()
        req = playback.request
        pieces = f" ({1 + len(playback.options.continuation)} pieces)" if playback.options.continuation else ""
        if playback.kind == "speak":
            self.set_status(f"Speaking{pieces}: {req.model} / {req.voice} / {req.response_format} "
                            f"from {req.base_url}")
        elif playback.kind == "replay":
            self.set_status(f"Replaying from the history cache: {req.model} / {req.voice} / {req.response_format}")

    def _on_finished(self, playback: Playback) -> None:
        """A Playback ended. Only the current one is shown (an overtaken one is followed by a newer one); the
        panels report their own Playbacks' outcome, the window its own Speaks'."""
        if playback is not self.player.current:
            return
        metrics = playback.metrics
        if metrics is not None:
            self.ttfa.show_metrics(metrics)
        if playback.kind not in WINDOW_KINDS:
            return
        self._refresh_transcript(final=True)
        if playback.failure:
            self.show_error(playback.failure)
        if metrics is None:
            self.set_status("Stopped")
            return
        if metrics.error:
            self.show_error(metrics.error)
        elif metrics.stopped:
            self.set_status("Stopped")
        else:
            self.set_status(f"Done: first sound after {metrics.ttfa_ms:.0f} ms, "
                            f"{metrics.audio_played_s:.1f} s played" if metrics.ttfa_ms is not None
                            else "Done")
        if metrics.format_warning:
            self.show_error(metrics.format_warning)
        self.session_finished.emit(metrics)

    @asyncSlot()
    async def stop(self) -> None:
        """Stop speaking now (the line-up and A/B too); any Speak still waiting to start is abandoned."""
        await self.player.stop()

    # --- what the line-up and A/B panels use (lineup_panel.PlayerHost) -----------------------------------
    def speak_options(self, voice: str | None = None, fmt: str | None = None,
                      text: str | None = None) -> SpeakOptions:
        """One request with the window's provider and knobs (ValueError with a message)."""
        return self._options(text=text, voice=voice, fmt=fmt)

    def provider_label(self) -> str:
        return self.provider_panel.provider_id()

    def voice_choices(self) -> list[tuple[str, str]]:
        return self.provider_panel.voice_choices()

    def current_text(self) -> str:
        return self.text_edit.toPlainText()

    def history_changed(self) -> None:
        self.history_panel.reload()

    def _on_tab(self, index: int) -> None:
        page = self.tabs.widget(index)
        if page is self.lineup_panel:
            self.lineup_panel.reload_voices()
        elif page is self.ab_panel:
            self.ab_panel.reload_voices()

    def _refresh_transcript(self, final: bool = False) -> None:
        """Show the Realtime transcript while it grows; once done, flag a reading that is not verbatim."""
        playback = self.player.current
        if playback is None or playback.kind not in WINDOW_KINDS or not self.transcript_box.isVisible():
            return
        text = playback.transcript
        if text != self.transcript.toPlainText():
            self.transcript.setPlainText(text)
        if final and text:
            spoken = " ".join(r.text for r in (playback.request, *playback.options.continuation))
            self.transcript_flag.setVisible(transcript_differs(spoken, text))

    def show_error(self, message: str) -> None:
        """Non-modal: the banner at the top plus the status line; the window stays usable."""
        log.info("shown to the user: %s", message)
        self.banner.show_message(message)
        self.set_status(f"Error: {message}")

    # --- shutdown -----------------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop the session and the timers, save the settings; once this returns the window closes at once.
        Safe to call again."""
        if self._released:
            return
        self._closing = True
        self.provider_panel.close_panel()
        self.plots.timer.stop()
        self.ttfa.timer.stop()
        self.transcript_timer.stop()
        self.save_settings()
        try:
            await self.lineup_panel.stop_and_wait()  # its run ends (no next voice starts)
            await self.player.close()  # nothing plays, nothing starts, the history writes have finished
        finally:
            self.history_panel.close_panel()
            self._released = True
            self._update_speak_enabled()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._released:
            event.accept()
            if not self._closed_emitted:
                self._closed_emitted = True
                self.closed.emit()
            return
        # The device must be released before the window (and maybe the loop) goes: stop asynchronously,
        # then close for real.
        event.ignore()
        if not self._closing:
            asyncio.ensure_future(self._close_async())

    async def _close_async(self) -> None:
        await self.shutdown()
        self.close()
