"""MainWindow: text, provider fields, Speak/Stop, live plots, the TTFA readout, tuning and an error banner.

Threads: GUI thread only, which under qasync is also the asyncio loop's thread. Speak is an async slot:
it runs on the loop, stops the current session (awaiting it until its device is closed), then starts a
new SpeakSession as a task. There is never more than one session playing: every Speak bumps a generation
number, and a Speak that was overtaken by a newer one while it waited for the old session to stop does not
start anything. The core's PortAudio callback thread is never touched from here; the plots and panels
poll ``snapshot()`` on timers.

The API key lives only in its line edit and in the request object of the running Speak: it is never
logged, saved or shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui.core.fetch import SpeechRequest
from voicegui.core.metrics import SessionMetrics
from voicegui.core.output import OutputConfig
from voicegui.core.session import SpeakOptions, SpeakSession
from voicegui.ui.panels import TtfaPanel, TuningPanel
from voicegui.ui.plots import LivePlots

log = logging.getLogger(__name__)

MAX_INPUT_CHARS = 4096  # OpenAI's limit for `input`
DEFAULT_BASE_URL = "http://127.0.0.1:8880/v1"  # Kokoro-FastAPI's default; the built-in provider comes later
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
          "marin", "cedar")
FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
SESSION_LOG = 50  # recent sessions kept (for the history panel to come, and for tests)


@dataclass
class Playback:
    """One Speak: the session, the task running it, and when run() was entered and left (monotonic)."""

    session: SpeakSession
    task: asyncio.Task | None = None
    entered_at: float | None = None
    left_at: float | None = None
    metrics: SessionMetrics | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


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
    """The voicegui window. ``closed`` is emitted once the close handler has released the device."""

    closed = Signal()
    session_finished = Signal(object)  # SessionMetrics of each Speak that ran, for listeners and tests

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("voicegui")
        self._current: Playback | None = None
        self._generation = 0
        self._starting = False
        self._closing = False
        self._released = False  # shutdown() finished: the device is free, closing is immediate
        self._closed_emitted = False
        self.playbacks: deque[Playback] = deque(maxlen=SESSION_LOG)

        self.banner = ErrorBanner()

        # --- text ---
        self.text_edit = QPlainTextEdit()
        self.text_edit.setPlaceholderText("Type or paste the text to speak, then press Speak (Ctrl+Enter).")
        self.text_edit.setTabChangesFocus(True)
        self.char_count = QLabel()
        self.char_count.setAlignment(Qt.AlignmentFlag.AlignRight)

        # --- provider ---
        self.base_url = QLineEdit(DEFAULT_BASE_URL)
        self.base_url.setPlaceholderText("OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("API key (kept in memory only)")
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(MODELS)
        self.voice = QComboBox()
        self.voice.setEditable(True)
        self.voice.addItems(VOICES)
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        provider = QGroupBox("Provider")
        pform = QFormLayout(provider)
        pform.addRow("Base URL", self.base_url)
        pform.addRow("API key", self.api_key)
        pform.addRow("Model", self.model)
        pform.addRow("Voice", self.voice)
        pform.addRow("Format", self.format)

        # --- actions ---
        self.speak_button = QPushButton("Speak")
        self.speak_button.setToolTip("Speak the text (Ctrl+Enter)")
        self.speak_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.speak_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
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

        # --- live views ---
        self.plots = LivePlots(self._session)
        self.ttfa = TtfaPanel(self._session)
        self.tuning = TuningPanel()

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.text_edit, 2)
        left_layout.addLayout(actions)
        left_layout.addWidget(self.plots, 3)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(provider)
        right_layout.addWidget(self.ttfa, 1)
        right_layout.addWidget(self.tuning)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)

        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.addWidget(self.banner)
        outer.addWidget(splitter, 1)
        self.setCentralWidget(central)
        self.status_line = QLabel("Ready")
        self.status_line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_line, 1)
        self.resize(1100, 720)

        self.text_edit.textChanged.connect(self._update_speak_enabled)
        self._update_speak_enabled()

    # --- state -------------------------------------------------------------------------------------------
    @property
    def session(self) -> SpeakSession | None:
        """The session of the current (or last) Speak."""
        return None if self._current is None else self._current.session

    @property
    def playback(self) -> Playback | None:
        return self._current

    def is_speaking(self) -> bool:
        cur = self._current
        return cur is not None and not cur.done.is_set()

    def _session(self) -> SpeakSession | None:
        return self.session

    def _speak_block_reason(self) -> str | None:
        text = self.text_edit.toPlainText()
        if not text.strip():
            return "Nothing to speak: type some text."
        if len(text) > MAX_INPUT_CHARS:
            return f"Text is longer than {MAX_INPUT_CHARS} characters: shorten it to speak it."
        return None

    def _update_speak_enabled(self) -> None:
        n = len(self.text_edit.toPlainText())
        over = n > MAX_INPUT_CHARS
        self.char_count.setText(f"{n} / {MAX_INPUT_CHARS}")
        self.char_count.setStyleSheet("color: #c62828; font-weight: bold;" if over else "")
        reason = self._speak_block_reason()
        self.speak_reason.setText(reason or "")
        self.speak_button.setToolTip(reason or "Speak the text (Ctrl+Enter)")
        self.speak_button.setEnabled(reason is None and not self._starting and not self._closing)
        self.stop_button.setEnabled(self._starting or self.is_speaking())

    def set_status(self, text: str) -> None:
        self.status_line.setText(text)

    # --- Speak / Stop -------------------------------------------------------------------------------------
    def _options(self) -> SpeakOptions:
        """The request and knobs for the next Speak; raises ValueError with a message for the user."""
        tuning = self.tuning.values()
        base_url = self.base_url.text().strip()
        if not base_url:
            raise ValueError("Enter the provider's base URL.")
        request = SpeechRequest(
            base_url=base_url,
            api_key=self.api_key.text() or "none",  # the OpenAI client insists on a key; local servers ignore it
            model=self.model.currentText().strip() or MODELS[0],
            voice=self.voice.currentText().strip() or VOICES[0],
            text=self.text_edit.toPlainText(),
            response_format=self.format.currentText(),
            chunk_bytes=tuning.chunk_bytes,
        )
        return SpeakOptions(
            request=request,
            prebuffer_ms=tuning.prebuffer_ms,
            max_buffer_s=tuning.max_buffer_s,
            output=OutputConfig(latency=tuning.latency, volume=tuning.volume),
        )

    @asyncSlot()
    async def speak(self) -> None:
        """Stop whatever is playing, then start one new Speak (the newest click wins)."""
        if self._closing or self._speak_block_reason() is not None:
            return
        self._generation += 1
        generation = self._generation
        self._starting = True
        self._update_speak_enabled()
        try:
            await self._stop_current()
            if generation != self._generation or self._closing:
                return  # a newer Speak (or Stop, or closing) came while the old session was stopping
            try:
                options = self._options()
            except ValueError as exc:
                self.show_error(str(exc))
                return
            self.banner.hide()
            self._start(options)
        finally:
            if generation == self._generation:
                self._starting = False
            self._update_speak_enabled()

    def _start(self, options: SpeakOptions) -> None:
        playback = Playback(session=SpeakSession(options))
        self._current = playback
        self.playbacks.append(playback)
        self.plots.reset()
        self.ttfa.reset()
        playback.task = asyncio.ensure_future(self._run(playback))
        req = options.request
        self.set_status(f"Speaking: {req.model} / {req.voice} / {req.response_format} from {req.base_url}")

    async def _run(self, playback: Playback) -> None:
        playback.entered_at = time.monotonic()
        try:
            playback.metrics = await playback.session.run()
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

    def _on_finished(self, playback: Playback) -> None:
        metrics = playback.metrics
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
        """Stop speaking now; any Speak still waiting to start is abandoned."""
        self._generation += 1  # a Speak waiting for the old session to stop must not start afterwards
        self._starting = False
        await self._stop_current()
        self._update_speak_enabled()

    def show_error(self, message: str) -> None:
        """Non-modal: the banner at the top plus the status line; the window stays usable."""
        log.info("shown to the user: %s", message)
        self.banner.show_message(message)
        self.set_status(f"Error: {message}")

    # --- shutdown -----------------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop the session and the timers; once this returns the window closes at once."""
        self._closing = True
        self._generation += 1  # a Speak waiting to start must not start now
        self.plots.timer.stop()
        self.ttfa.timer.stop()
        try:
            await self._stop_current()
        finally:
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
