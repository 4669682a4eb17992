"""MainWindow: text, provider panel, Speak/Stop, live plots, the TTFA readout, tuning, network simulator,
the Realtime transcript and an error banner; settings restored at start and saved at close.

Threads: GUI thread only, which under qasync is also the asyncio loop's thread. Speak is an async slot:
it runs on the loop, stops the current session (awaiting it until its device is closed), then starts a
new SpeakSession as a task. There is never more than one session playing: every Speak bumps a generation
number, and a Speak that was overtaken by a newer one while it waited for the old session to stop does not
start anything. The core's PortAudio callback thread is never touched from here; the plots and panels
poll ``snapshot()`` on timers.

Text longer than one request takes (4096 characters) is cut at sentence ends (text.split_for_request)
and the pieces are fetched one after another into one session (SpeakOptions.continuation): one ring, one
device stream, one gapless utterance.

History, line-up and A/B live in their own tabs (ui/history_panel.py, ui/lineup_panel.py, ui/ab_panel.py).
Every Speak is recorded in the HistoryStore after it ends (the file writes in a worker thread); a replay from
history is a Speak whose SpeakOptions.source feeds the cached bytes instead of a request, so it runs through
the same session, plots and readout. Only one thing plays at a time: a Speak or Stop silences the panels,
and a panel silences the window's Speak and the other panel first (``stop_others``). The plots follow the
window's own Speak, or the panel that started playing last (``show_session``). The window's Stop (and Esc)
stops whatever plays and is enabled whenever anything plays: the panels say when they start and end
(``running_changed``).

The built-in server (BuiltinServer) is started and stopped by ui/app.py; the window only reads its
URL/token and sets its ``shaping`` from the network simulator (a plain attribute swap, read by the
server's thread once per request).

The API key lives in its line edit, the KeyStore (keyring or memory) and the request object of the running
Speak: it is never logged, written to the settings file or shown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
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
from voicegui.stream.fetch import SpeechRequest
from voicegui.features.history import HistoryError, HistoryStore
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.output import OutputConfig
from voicegui.providers import BUILTIN
from voicegui.stream.realtime import transcript_differs
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.text import split_for_request
from voicegui.settings import KeyStore, Settings
from voicegui.ui.ab_panel import ABPanel
from voicegui.ui.history_panel import MB, HistoryPanel, record_session
from voicegui.ui.lineup_panel import LineupPanel
from voicegui.ui.panels import NetworkPanel, TtfaPanel, TuningPanel
from voicegui.ui.plots import LivePlots
from voicegui.ui.provider_panel import ProviderPanel

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`: longer text is sent as several requests
MAX_TEXT_CHARS = 200_000  # beyond this, something was pasted by mistake
SESSION_LOG = 50  # recent sessions kept (for the history panel to come, and for tests)


@dataclass
class Playback:
    """One Speak: the session, the task running it, and when run() was entered and left (monotonic)."""

    session: SpeakSession  # the piece playing now (the first, until it ends)
    parts: list[SpeakOptions] = field(default_factory=list)  # one per request (text over 4096 chars: several)
    sessions: list[SpeakSession] = field(default_factory=list)
    task: asyncio.Task | None = None
    entered_at: float | None = None
    left_at: float | None = None
    metrics: SessionMetrics | None = None  # of the last piece that ran
    stop_requested: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    record: bool = True  # a Speak goes into the history when it ends; a replay from history does not
    provider: str = ""  # provider id, for the history

    @property
    def transcript(self) -> str:
        """The Realtime model's transcript over all pieces so far."""
        return " ".join(t for t in (s.transcript.strip() for s in self.sessions) if t)


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
        self._current: Playback | None = None
        self._generation = 0
        self._starting = False
        self._closing = False
        self._released = False  # shutdown() finished: the device is free, closing is immediate
        self._closed_emitted = False
        self._builtin: Any = None
        self.playbacks: deque[Playback] = deque(maxlen=SESSION_LOG)
        self._shown: Any = None  # a panel whose current_session() the plots follow; None: our own Speak
        self._background: set[asyncio.Future] = set()  # history writes in flight (kept referenced)
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
            QShortcut(QKeySequence(seq), self, activated=self.speak_button.click)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.stop)
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
        self.plots = LivePlots(self._session)
        self.ttfa = TtfaPanel(self._session)
        self.tuning = TuningPanel()
        self.network = NetworkPanel()
        self._restore_knobs()
        self.history_panel = HistoryPanel(self.history, self.settings.history_max_mb)
        self.history_panel.replay_requested.connect(self.replay)
        self.history_panel.error.connect(self.show_error)
        self.lineup_panel = LineupPanel(self)
        self.ab_panel = ABPanel(self)
        # Stop must be enabled whenever anything plays, whoever started it.
        self.lineup_panel.running_changed.connect(lambda _running: self._update_speak_enabled())
        self.ab_panel.running_changed.connect(lambda _running: self._update_speak_enabled())

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
        """The session of the current (or last) Speak."""
        return None if self._current is None else self._current.session

    @property
    def playback(self) -> Playback | None:
        return self._current

    def is_closing(self) -> bool:
        return self._closing

    def is_speaking(self) -> bool:
        cur = self._current
        return cur is not None and not cur.done.is_set()

    def panel_playing(self) -> bool:
        """The line-up or the A/B tab is playing (the window's Stop and Esc silence them too)."""
        lineup, ab = getattr(self, "lineup_panel", None), getattr(self, "ab_panel", None)  # None while built
        return (lineup is not None and lineup.is_running()) or (ab is not None and ab.is_playing())

    def _session(self) -> SpeakSession | None:
        """What the plots and the readout follow: the panel that plays (line-up, A/B) or our own Speak."""
        if self._shown is not None:
            return self._shown.current_session()
        return self.session

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
        self.speak_button.setEnabled(reason is None and not self._starting and not self._closing)
        self.stop_button.setEnabled(self._starting or self.is_speaking() or self.panel_playing())

    def set_status(self, text: str) -> None:
        self.status_line.setText(text)

    # --- Speak / Stop -------------------------------------------------------------------------------------
    def _options(self, text: str | None = None, voice: str | None = None,
                 fmt: str | None = None) -> list[SpeakOptions]:
        """The requests (one per ≤4096-character piece) and knobs for the next Speak; raises ValueError
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
        return [SpeakOptions(
            request=requests[0],
            continuation=tuple(requests[1:]),
            prebuffer_ms=tuning.prebuffer_ms,
            max_buffer_s=tuning.max_buffer_s,
            output=output,
            keep_original=True,  # for the history cache
        )]

    @asyncSlot()
    async def speak(self) -> None:
        """Stop whatever is playing, then start one new Speak (the newest click wins)."""
        if self._closing or self._speak_block_reason() is not None:
            return
        await self._begin(self._options, record=True)

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

        def build() -> list[SpeakOptions]:
            # The current knobs apply: replaying the same bytes under other buffer settings is a fair test.
            tuning = self.tuning.values()
            request = SpeechRequest(base_url=entry.base_url, api_key="none", model=entry.model, voice=entry.voice,
                                    text=entry.text, response_format=entry.format, speed=entry.speed,
                                    chunk_bytes=tuning.chunk_bytes)
            output = OutputConfig(device=tuning.device, latency=tuning.latency, blocksize=tuning.blocksize,
                                  volume=tuning.volume)
            return [SpeakOptions(request=request, prebuffer_ms=tuning.prebuffer_ms, max_buffer_s=tuning.max_buffer_s,
                                 output=output, keep_original=True, source=replay_source(data))]

        await self._begin(build, record=False)

    async def _begin(self, build: Callable[[], list[SpeakOptions]], record: bool) -> None:
        """Stop everything that plays, then start the Speak `build()` describes unless a newer one came."""
        self._generation += 1
        generation = self._generation
        self._starting = True
        self._update_speak_enabled()
        try:
            await self._stop_current()
            await self._stop_panels()
            if generation != self._generation or self._closing:
                return  # a newer Speak (or Stop, or closing) came while the old session was stopping
            try:
                parts = build()
            except ValueError as exc:
                self.show_error(str(exc))
                return
            self.banner.hide()
            if record:
                self.provider_panel.store_key()
            self._start(parts, record)
        finally:
            if generation == self._generation:
                self._starting = False
            self._update_speak_enabled()

    def _start(self, parts: list[SpeakOptions], record: bool = True) -> None:
        first = SpeakSession(parts[0])
        playback = Playback(session=first, parts=parts, sessions=[first], record=record,
                            provider=self.provider_panel.provider_id())
        self._current = playback
        self._shown = None  # the plots follow this Speak
        self.playbacks.append(playback)
        self.plots.reset()
        self.ttfa.reset()
        self.transcript.clear()
        self.transcript_flag.hide()
        playback.task = asyncio.ensure_future(self._run(playback))
        req = parts[0].request
        pieces = f" ({len(parts)} pieces)" if len(parts) > 1 else ""
        if record:
            self.set_status(f"Speaking{pieces}: {req.model} / {req.voice} / {req.response_format} "
                            f"from {req.base_url}")
        else:
            self.set_status(f"Replaying from the history cache: {req.model} / {req.voice} / {req.response_format}")

    async def _run(self, playback: Playback) -> None:
        playback.entered_at = time.monotonic()
        try:
            for index, options in enumerate(playback.parts):
                if index:
                    if playback.stop_requested:
                        break
                    # Back to back: the next piece's session starts once the previous one has drained.
                    playback.session = SpeakSession(options)
                    playback.sessions.append(playback.session)
                    self.set_status(f"Speaking piece {index + 1} of {len(playback.parts)}")
                playback.metrics = await playback.session.run()
                if not playback.metrics.completed:
                    break
        except Exception as exc:  # run() reports provider/device faults in its metrics; this is a bug
            log.exception("speak failed unexpectedly")
            if playback is self._current:
                self.show_error(f"Internal error while speaking: {exc}")
        finally:
            playback.left_at = time.monotonic()
            playback.done.set()
            if playback is self._current:
                self._on_finished(playback)
            self._update_speak_enabled()
            if playback.record:
                task = asyncio.ensure_future(self._record(playback))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _record(self, playback: Playback) -> None:
        """Put each piece that ran into the history (file writes in a worker thread), then show it."""
        for session in playback.sessions:
            if session.metrics is None:
                continue
            requests = (session.options.request, *session.options.continuation)
            # A long text's pieces are separate files (each with its header): one history row each, so a
            # replay from the cache decodes each as the file it is.
            for request, original in zip(requests, session.original_pieces):
                options = dataclasses.replace(session.options, request=request, continuation=())
                await record_session(self.history, options, session.metrics, original, playback.provider)
        self.history_changed()

    def _on_finished(self, playback: Playback) -> None:
        metrics = playback.metrics
        self._refresh_transcript(final=True)
        if metrics is None:
            self.set_status("Stopped")
            return
        self.ttfa.show_metrics(metrics)
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

    async def _stop_current(self) -> None:
        """Silence the current session and wait until it has released the device."""
        playback = self._current
        if playback is None or playback.done.is_set():
            return
        playback.stop_requested = True
        playback.session.stop()
        if playback.entered_at is None and playback.task is not None:
            # run() has not begun, so session.stop() had no task to cancel: cancel ours before it begins.
            playback.task.cancel()
            playback.done.set()
            if playback is self._current:
                self._on_finished(playback)
        await playback.done.wait()

    @asyncSlot()
    async def stop(self) -> None:
        """Stop speaking now (the line-up and A/B too); any Speak still waiting to start is abandoned."""
        self._generation += 1  # a Speak waiting for the old session to stop must not start afterwards
        self._starting = False
        await self._stop_current()
        await self._stop_panels()
        self._update_speak_enabled()

    async def _stop_panels(self, keep: object = None) -> None:
        for panel in (self.lineup_panel, self.ab_panel):
            if panel is not keep:
                await panel.stop_and_wait()

    # --- what the line-up and A/B panels use (lineup_panel.PlayerHost) -----------------------------------
    def speak_options(self, voice: str | None = None, fmt: str | None = None,
                      text: str | None = None) -> SpeakOptions:
        """One request with the window's provider and knobs (ValueError with a message)."""
        return self._options(text=text, voice=voice, fmt=fmt)[0]

    def provider_label(self) -> str:
        return self.provider_panel.provider_id()

    def voice_choices(self) -> list[tuple[str, str]]:
        return self.provider_panel.voice_choices()

    def current_text(self) -> str:
        return self.text_edit.toPlainText()

    async def stop_others(self, keep: object) -> None:
        """A panel is about to play: silence the window's Speak and the other panel, and wait for them."""
        self._generation += 1  # a Speak waiting to start must not start on top of the panel
        self._starting = False
        await self._stop_current()
        await self._stop_panels(keep)
        self._update_speak_enabled()

    def show_session(self, owner: object) -> None:
        self._shown = owner
        self.plots.reset()
        self.ttfa.reset()

    def show_result(self, metrics: SessionMetrics | None) -> None:
        if metrics is not None:
            self.ttfa.show_metrics(metrics)

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
        playback = self._current
        if playback is None or not self.transcript_box.isVisible():
            return
        text = playback.transcript
        if text != self.transcript.toPlainText():
            self.transcript.setPlainText(text)
        if final and text:
            spoken = " ".join(p.request.text for p in playback.parts[:len(playback.sessions)])
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
        self._generation += 1  # a Speak waiting to start must not start now
        self.plots.timer.stop()
        self.ttfa.timer.stop()
        self.transcript_timer.stop()
        self.save_settings()
        try:
            await self._stop_current()
            await self._stop_panels()
            if self._background:
                await asyncio.gather(*self._background, return_exceptions=True)  # history writes finish
        finally:
            self.history_panel.close_panel()
            self._released = True
            self._update_speak_enabled()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
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
