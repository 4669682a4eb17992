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
server's thread once per request). The app tells the window when the server is up (set_builtin: its voices
are listed) and when the default voice is loaded (set_builtin_ready). A Speak through the built-in provider
before that is queued ("Loading voices… will speak when ready"; Stop cancels it) and started then with the
options shown at that moment; a failure to start the voices drops it with the reason. A voice whose engine
has not loaded yet (the server loads engines lazily) is loaded in a worker thread before its Speak starts,
with "Loading <engine> voice…" shown meanwhile (ui/builtin_voices.py).

Start-up: the plots (pyqtgraph: ~0.2-0.4 s of imports and set-up) are built after the window is first shown
(`build_plots`, called by ui/app.py once the window is up), in the place kept for them; anything that needs them
earlier (`plots`) builds them then.

The API key lives in its line edit, the KeyStore (keyring or memory) and the request object of the running
Speak: it is never logged, written to the settings file or shown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QMainWindow,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui import settings as settings_mod
from voicegui.features.history import HistoryError, history_hook, open_store
from voicegui.providers import BUILTIN
from voicegui.server.engines.base import EngineError
from voicegui.server_profile import KOKORO_FASTAPI
from voicegui.settings import KeyStore, Settings
from voicegui.stream.player import Playback, Player, PlayerState
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.ui import theme, window_state
from voicegui.ui.ab_panel import ABPanel
from voicegui.ui.banner import ErrorBanner
from voicegui.ui.builtin_voices import load_engine, pending_engine
from voicegui.ui.focus_ring import FocusRing
from voicegui.ui.history_panel import MB, HistoryPanel, suggested_name
from voicegui.ui.layout import SidePane, column, scrolled, side_by_side
from voicegui.ui.lineup_panel import LineupPanel
from voicegui.ui.menus import Commands, install_menus
from voicegui.ui.panels import NetworkPanel, TtfaPanel, TuningPanel, with_underruns
from voicegui.ui.provider_panel import BUILTIN_STARTING, ProviderPanel
from voicegui.ui.safe_text import PlainLabel
from voicegui.ui.speak_options import replay_options, speak_options
from voicegui.ui.status import READY, error_status, is_error_status, outcome, started_message
from voicegui.ui.text_panel import TextPanel
from voicegui.ui.transcript_box import TranscriptBox
from voicegui.ui.voice_picker import PREVIEW_TEXT

if TYPE_CHECKING:
    from voicegui.ui.plots import LivePlots

log = logging.getLogger(__name__)

WINDOW_KINDS = ("speak", "replay")  # Playbacks the window itself started (the panels report their own)
SPEAK_LABEL = "&Speak"
QUEUED_LABEL = "Waiting for voices…"
QUEUED_STATUS = "Loading voices… will speak when ready"


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
        self._builtin_ready = False  # the default built-in voice can speak (set_builtin_ready)
        self._builtin_failed = False  # the built-in voices will not become ready (set_builtin_error)
        self._queued = False  # a Speak clicked before the built-in voices were ready waits for them
        self._queued_task: asyncio.Future[None] | None = None
        self._loading_engine: str | None = None  # an engine loading for the next Speak ("piper")
        self._speak_generation = 0  # Stop increments it: a Speak waiting for an engine's load is dropped
        loaded = settings_mod.load()
        self.settings: Settings = loaded.settings
        self.keys = keys or KeyStore()
        self.history, history_problem = open_store(max_bytes=int(self.settings.history_max_mb * MB))
        self.player = Player(history_hook=history_hook(self.history, lambda _: self.history_changed(), self.show_error))
        self.player.on_state(lambda _state: self._update_speak_enabled())
        self.player.on_started(self._on_started)
        self.player.on_finished(self._on_finished)

        self.banner = ErrorBanner()
        self.text_panel = TextPanel()
        tp = self.text_panel
        self.provider_panel = ProviderPanel(self.settings, self.keys)
        pp = self.provider_panel
        # Short names for the fields tests and the rest of the window use.
        self.text_edit, self.text_label, self.char_count = tp.text_edit, tp.text_label, tp.char_count
        self.speak_button, self.stop_button, self.speak_reason = tp.speak_button, tp.stop_button, tp.speak_reason
        self.base_url, self.api_key, self.model, self.voice, self.format = (
            pp.base_url, pp.api_key, pp.model, pp.voice, pp.format)
        self.speak_button.clicked.connect(self.speak)
        pp.preview_requested.connect(self.preview)
        # A new attempt makes the last error stale, whatever its outcome will be.
        pp.test_button.clicked.connect(self.clear_error)
        self.banner.dismissed.connect(self._drop_error_status)
        self.stop_button.clicked.connect(self.stop)
        # Realtime models say what they read: shown for the window's own Speaks.
        self.transcript_box = TranscriptBox(self._own_playback)
        self.transcript, self.transcript_flag = self.transcript_box.transcript, self.transcript_box.flag
        self.transcript_box.setVisible(pp.is_realtime())
        self.text_panel.progress.follow(self._own_playback)  # piece x of y, time, the sentence heard
        self.text_panel.progress.keep_timings_with(self.history.save_timings)  # read-along timings go to history
        self.text_panel.progress.ask_timings_of(self._server_gives_timings)

        # --- live views and knobs ---
        self._plots: LivePlots | None = None
        self._fixed_axes = False  # the plots' "Fixed axes" until they exist
        self._plots_place = QWidget()  # the plots' place until they are built (see "Start-up")
        QVBoxLayout(self._plots_place).setContentsMargins(0, 0, 0, 0)
        self.ttfa = TtfaPanel(lambda: self.player.session)
        self.tuning = TuningPanel()
        self.network = NetworkPanel()
        self.tuning.restore(self.settings)
        self.network.restore(self.settings)
        self.history_panel = HistoryPanel(self.history, self.settings.history_max_mb)
        self.history_panel.replay_requested.connect(self.replay)
        self.history_panel.error.connect(self.show_error)
        self.lineup_panel = LineupPanel(self)
        self.ab_panel = ABPanel(self)
        # Stop must stay enabled between a line-up's voices too, while the player is idle for a moment.
        self.lineup_panel.running_changed.connect(lambda _running: self._update_speak_enabled())

        left = column((self.text_panel, 2), (pp.warning, 0), (self.transcript_box, 0), (self._plots_place, 3))
        playback_page = column((self.tuning, 0), (self.network, -1))
        right = SidePane([(scrolled(pp), "&Voice"), (scrolled(playback_page), "Pl&ayback"),
                          (self.history_panel, "&History"), (self.lineup_panel, "&Line-up"), (self.ab_panel, "A/&B")],
                         readout=self.ttfa)
        self.tabs = right.tabs
        self.side_pane = right
        self.tabs.currentChanged.connect(self._on_tab)
        # The Line-up or A/B tab shown (at start-up, restored) before the voice list arrived gets it then.
        pp.picker.voices_changed.connect(lambda: self._on_tab(self.tabs.currentIndex()))
        self._claim_ab_switch_key()
        self.menu_actions = install_menus(self, Commands(
            speak=self.speak_button.click, stop=self.stop, save_audio=self.save_last_audio,
            export_report=self.lineup_panel.export_button.click, quit=self.close, ab_switch=self.switch_ab,
            show_tab=self.show_tab, tab_titles=[self.tabs.tabText(i) for i in range(self.tabs.count())]))
        self.focus_ring = FocusRing(self)
        # Plots get the larger share: an engineer tuning buffers watches them; the form needs ~480 px.
        self.splitter = side_by_side(left, right, stretch=(3, 2), sizes=(780, 480))
        self.setCentralWidget(column((self.banner, 0), (self.splitter, 1), margin=8))
        self.status_line = PlainLabel(READY)  # quotes servers: plain text, redacted, cut (ui/safe_text.py)
        self.status_line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.status_line, 1)
        self.statusBar().addPermanentWidget(self.network.indicator)
        self.resize(1280, 800)
        self._restore_state(window_state.load())
        theme.controller().changed.connect(self.banner.apply_scheme)
        self.banner.apply_scheme(theme.controller().scheme())

        self.text_edit.textChanged.connect(self._update_speak_enabled)
        pp.model_changed.connect(lambda _m: self.transcript_box.setVisible(pp.is_realtime()))
        pp.provider_changed.connect(lambda pid: self.network.set_builtin_chosen(pid == BUILTIN))
        self.network.changed.connect(self._apply_shaping)
        self.network.set_builtin_chosen(pp.provider_id() == BUILTIN)
        self._update_speak_enabled()
        if builtin is not None:
            self.set_builtin(builtin)
        start_up = [m for m in (loaded.message, history_problem) if m]
        if start_up:  # one banner: both notices must stay readable
            self.show_error(" ".join(start_up))

    def _server_gives_timings(self, playback: Playback) -> bool:
        """Whether the server `playback` streams from answers POST /dev/captioned_speech with timings: the
        built-in server, and Kokoro-FastAPI (known by its profile: owned_by 'kokoro' in /models)."""
        if playback.provider == BUILTIN:
            return True
        return (playback.provider == self.provider_panel.provider_id()
                and self.provider_panel.profile().kind == KOKORO_FASTAPI)

    @property
    def plots_built(self) -> bool:
        return self._plots is not None

    @property
    def plots(self) -> LivePlots:
        """The live plots, built now if they were not yet (see "Start-up" in the module docstring)."""
        if self._plots is None:
            self.build_plots()
        assert self._plots is not None
        return self._plots

    def build_plots(self) -> None:
        """Build the live plots in their place (once; later calls do nothing), in the Tab order they had when
        they were built with the window: after the place kept for them, before what follows it."""
        if self._plots is not None:
            return
        from voicegui.ui.plots import LivePlots

        self._plots = LivePlots(lambda: self.player.session)
        self._plots.fixed_axes.setChecked(self._fixed_axes)
        place = self._plots_place
        # Added now, the plots' widgets would join the end of the window's Tab chain: put them after the last
        # widget before their place that takes Tab, as when they were built with the window.
        before: QWidget | None = place.previousInFocusChain()
        while before is not None and before is not place and not before.focusPolicy() & Qt.FocusPolicy.TabFocus:
            before = before.previousInFocusChain()
        layout = place.layout()
        assert layout is not None  # made with one in __init__
        layout.addWidget(self._plots)
        tabbable = [w for w in self._plots.findChildren(QWidget) if w.focusPolicy() & Qt.FocusPolicy.TabFocus]
        chain = [w for w in (before, *tabbable) if w is not None]
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

    # --- built-in server, settings --------------------------------------------------------------------
    def set_builtin(self, server: Any, ready: bool = True) -> None:
        """The app's BuiltinServer runs: offer its voices; the simulator now drives its shaping. `ready`: its
        default voice can speak already (else set_builtin_ready() follows once it can)."""
        self._builtin = server
        self.provider_panel.set_builtin(server)
        self._apply_shaping(self.network.shaping())
        if ready:
            self.set_builtin_ready()
        self._update_speak_enabled()

    def set_builtin_ready(self) -> None:
        """The default built-in voice is loaded: a queued Speak starts now, a "still starting" error goes."""
        self._builtin_ready = True
        if BUILTIN_STARTING in self.banner.text():  # said by a tab (line-up, A/B) before: no longer true
            self.banner.hide()
            if BUILTIN_STARTING in self.status_line.text():
                self.set_status("Ready")
        if self._queued:
            self._queued = False
            self._update_speak_enabled()
            self._queued_task = asyncio.ensure_future(self._play_queued())

    def set_builtin_error(self, message: str) -> None:
        """The built-in voices did not start (or their default voice did not load): a queued Speak is dropped
        and `message` shown; the voices listed, if any, stay usable."""
        self._builtin_failed = self._builtin is None
        self._builtin_ready = self._builtin is not None
        self.provider_panel.set_builtin_error(message)
        queued, self._queued = self._queued, False
        self._update_speak_enabled()
        if queued or self.provider_panel.provider_id() == BUILTIN:
            self.show_error(message)

    def _apply_shaping(self, shaping: Any) -> None:
        if self._builtin is not None:
            self._builtin.shaping = shaping

    def collect_settings(self) -> Settings:
        """The settings as shown now (everything but the API key): each panel puts in its own."""
        for panel in (self.provider_panel, self.tuning, self.network, self.history_panel):
            panel.store_into(self.settings)
        return self.settings

    def current_state(self) -> window_state.WindowState:
        """Geometry, splitters, tab, text, theme and fixed axes as shown now (saved to window.json at close)."""
        return window_state.WindowState(
            geometry=bytes(self.saveGeometry().toBase64().data()).decode("ascii"),
            splitter=self.splitter.sizes(), side_splitter=self.side_pane.sizes(), tab=self.tabs.currentIndex(),
            text=self.text_edit.toPlainText(), theme=theme.controller().choice(),
            close_to_tray=self.close_to_tray,
            fixed_axes=self._fixed_axes if self._plots is None else self._plots.fixed_axes.isChecked())

    def _restore_state(self, state: window_state.WindowState) -> None:
        """Show the window as it was at the last close; what is missing or does not fit keeps its default."""
        # settings.json held the geometry before window.json existed: an upgrade keeps the window where it was.
        geometry = state.geometry or self.settings.window_geometry
        if geometry:
            self.restoreGeometry(QByteArray.fromBase64(geometry.encode("ascii")))
        if len(state.splitter) == 2 and all(state.splitter):
            self.splitter.setSizes(state.splitter)
        if len(state.side_splitter) == 2 and all(state.side_splitter):
            self.side_pane.setSizes(state.side_splitter)
        if 0 <= state.tab < self.tabs.count():
            self.tabs.setCurrentIndex(state.tab)
        if state.text:
            self.text_edit.setPlainText(state.text)
        theme.controller().set_choice(state.theme)
        self.menu_actions.themes[state.theme].setChecked(True)
        self._fixed_axes = state.fixed_axes  # applied when the plots are built (see "Start-up")
        # Read by the tray (ui/tray.py) when it is installed, written back by it when toggled.
        self.close_to_tray = state.close_to_tray

    def _claim_ab_switch_key(self) -> None:
        """Ctrl+B switches the A/B side from anywhere in the window (View menu). The A/B tab's own Ctrl+B
        (only while it has the focus) would make the key ambiguous there, and Qt then runs neither: it goes."""
        ctrl_b = QKeySequence("Ctrl+B")
        for shortcut in self.ab_panel.findChildren(QShortcut):
            if ctrl_b in shortcut.keys():
                shortcut.setEnabled(False)
            else:
                shortcut.setWhatsThis("Switch A/B side")
        self.ab_panel.setAccessibleName("the A/B tab")

    def show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def switch_ab(self) -> None:
        """Play the other A/B side (Ctrl+B), from whichever tab is shown."""
        self.ab_panel.toggle()

    def save_last_audio(self) -> None:
        """File > Save last audio: the newest history entry's played audio as a WAV, to a file the user picks."""
        entry = self._last_saved_entry()
        if entry is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the last audio as WAV",
                                              str(Path.home() / suggested_name(entry, "wav")), "WAV audio (*.wav)")
        if path:
            asyncio.ensure_future(self.history_panel.save(entry.id, Path(path), played=True))

    def _last_saved_entry(self) -> Any:
        entries = [e for e in self.history.entries() if e.audio_bytes > 0 and not e.evicted]
        if not entries:
            self.show_error("There is no audio to save yet: Speak first (each Speak's audio is kept in the "
                            "History tab).")
            return None
        return entries[-1]

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
        own = self._own_playback()
        return own is not None and not own.done.is_set()

    def _own_playback(self) -> Playback | None:
        """The player's current Playback if the window itself started it (a Speak or a history replay)."""
        cur = self.player.current
        return cur if cur is not None and cur.kind in WINDOW_KINDS else None

    def is_builtin_ready(self) -> bool:
        """The built-in voices can speak (or failed to: then a Speak through them says why at once)."""
        return self._builtin_ready

    def is_queued(self) -> bool:
        """A Speak waits for the built-in voices to be ready."""
        return self._queued

    def _update_speak_enabled(self) -> None:
        lineup = getattr(self, "lineup_panel", None)  # None while the window is being built
        waiting = self._queued or self._loading_engine is not None
        self.text_panel.update_state(
            can_start=self.player.state is not PlayerState.STARTING and not self._closing and not waiting,
            # Stop stays usable between a line-up's voices, while the player is idle for a moment.
            can_stop=self.player.is_busy() or (lineup is not None and lineup.is_running()) or waiting)
        actions = getattr(self, "menu_actions", None)  # None while the window is being built
        if actions is not None:
            actions.speak.setEnabled(self.speak_button.isEnabled())
            actions.stop.setEnabled(self.stop_button.isEnabled())
        if self._queued:
            self.speak_button.setText(QUEUED_LABEL)
        elif self._loading_engine is not None:
            self.speak_button.setText(f"Loading {self._loading_engine} voice…")
        else:
            self.speak_button.setText(SPEAK_LABEL)

    def set_status(self, text: str) -> None:
        self.status_line.setText(text)

    # --- Speak / Stop -------------------------------------------------------------------------------------
    @asyncSlot()
    async def speak(self) -> None:
        """Stop whatever is playing, then start one new Speak (the newest click wins)."""
        if self._closing or self.text_panel.block_reason() is not None or self._queued:
            return
        self.clear_error()
        if self._waits_for_builtin():
            self._queued = True
            self.banner.hide()
            self.set_status(QUEUED_STATUS)
            self._update_speak_enabled()
            return
        await self._speak_now()

    def _waits_for_builtin(self) -> bool:
        """The built-in provider is chosen and its voices are still starting (not failed: that is shown)."""
        return (self.provider_panel.provider_id() == BUILTIN and not self._builtin_ready
                and not self._builtin_failed)

    async def _play_queued(self) -> None:
        """The voices are ready: the queued Speak, with the text and choices shown now."""
        reason = self.text_panel.block_reason()
        if self._closing:
            return
        if reason is not None:  # the text was emptied while it waited
            self.set_status(reason)
            return
        await self._speak_now()

    async def _speak_now(self) -> None:
        """Start a Speak; a built-in voice whose engine has not loaded yet is loaded first, visibly."""
        generation = self._speak_generation
        engine = (pending_engine(self._builtin, self.provider_panel.voice_id())
                  if self.provider_panel.provider_id() == BUILTIN and self._builtin is not None else None)
        if engine is not None:
            self._loading_engine = engine.name
            self.set_status(f"Loading {engine.name} voice…")
            self._update_speak_enabled()
            try:
                await asyncio.to_thread(load_engine, engine)
            except EngineError as exc:
                self.show_error(f"The {engine.name} voices could not be loaded ({exc}); choose another voice "
                                "under Voice.")
                return
            finally:
                self._loading_engine = None
                self._update_speak_enabled()
            if self._closing or generation != self._speak_generation:
                return  # Stop was pressed while it loaded
        await self._start(lambda: self.speak_options(), kind="speak")

    @asyncSlot(str)
    async def replay(self, entry_id: str) -> None:
        """Play a history entry again from the cache: the same session path and plots, no request."""
        if self._closing:
            return
        self.clear_error()
        try:
            entry = self.history.get(entry_id)
            data = await asyncio.to_thread(self.history.original, entry_id)
        except (HistoryError, OSError) as exc:
            self.show_error(str(exc))
            return
        self.text_panel.progress.use_timings(entry.text, await asyncio.to_thread(self.history.replay_timings, entry_id))

        await self._start(lambda: replay_options(entry, data, self.tuning.values()), kind="replay", record=False)

    @asyncSlot(str)
    async def preview(self, voice: str) -> None:
        """The voice browser's ▶: a short sample in `voice` through the one player, without choosing it and
        without a History entry (it is not the user's text)."""
        self.clear_error()
        await self._start(lambda: self.speak_options(voice=voice, text=PREVIEW_TEXT), kind="preview", record=False)

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

    def _on_started(self, playback: Playback) -> None:
        """Whatever starts (a Speak, a replay, an A/B side, a line-up voice): the plots and readout start afresh."""
        self.plots.reset()
        self.ttfa.reset()
        self.transcript_box.clear()
        if playback.kind in WINDOW_KINDS:  # the panels say what they play themselves
            self.set_status(started_message(playback))

    def _on_finished(self, playback: Playback) -> None:
        """A Playback ended. Only the current one is shown (an overtaken one is followed by a newer one); the
        panels report their own Playbacks' outcome, the window its own Speaks'."""
        if playback is not self.player.current:
            return
        if playback.metrics is not None:
            self.ttfa.show_metrics(playback.metrics)
        if playback.kind not in WINDOW_KINDS:
            return
        self.transcript_box.refresh(final=True)
        status, problems = outcome(playback)
        self.set_status(with_underruns(status, playback.metrics))
        for problem in problems:
            self.show_error(problem)
        if playback.metrics is not None:
            self.session_finished.emit(playback.metrics)

    @asyncSlot()
    async def stop(self) -> None:
        """Stop speaking now (the line-up and A/B too); any Speak still waiting to start is abandoned (one queued
        for the built-in voices, or waiting for its engine to load, too)."""
        self._speak_generation += 1
        if self._queued or self._loading_engine is not None:
            self._queued = False
            self.set_status("Stopped: the Speak that waited for the voices will not play.")
            self._update_speak_enabled()
        await self.player.stop()

    # --- what the line-up and A/B panels use (lineup_panel.PlayerHost) -----------------------------------
    def speak_options(self, voice: str | None = None, fmt: str | None = None,
                      text: str | None = None) -> SpeakOptions:
        """The next Speak with the window's provider and knobs (ValueError with a message); text, voice, format:
        instead of the ones shown (line-up, A/B)."""
        return speak_options(self.provider_panel, self.tuning.values(), self.current_text() if text is None else text,
                             voice, fmt)

    def provider_label(self) -> str:
        return self.provider_panel.provider_id()

    def voice_choices(self) -> list[tuple[str, str]]:
        return self.provider_panel.voice_choices()

    def voice_names(self) -> list[tuple[str, str]]:
        return self.provider_panel.voice_names()

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

    def show_error(self, message: str) -> None:
        """Non-modal: the banner at the top plus the status line; the window stays usable."""
        log.info("shown to the user: %s", message)
        self.banner.show_message(message)
        self.set_status(error_status(message))

    def clear_error(self) -> None:
        """A new Speak, replay or Test connection: the banner and an error in the status line are stale now."""
        self.banner.hide()
        self._drop_error_status()

    def _drop_error_status(self) -> None:
        if is_error_status(self.status_line.text()):
            self.set_status(READY)

    # --- shutdown -----------------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop the session and the timers, save the settings; once this returns the window closes at once.
        Safe to call again."""
        if self._released:
            return
        self._closing = True
        self._queued = False
        self.provider_panel.close_panel()
        if self._plots is not None:
            self._plots.timer.stop()
        self.ttfa.timer.stop()
        self.transcript_box.timer.stop()
        self.save_settings()
        try:
            await asyncio.to_thread(window_state.save, self.current_state())
        except OSError as exc:  # the window is closing: the log is the only place left to say it
            log.warning("could not save the window's state: %s", exc)
        try:
            await self.provider_panel.wait_closed()  # the listings cancelled above end on this loop
            await self.lineup_panel.stop_and_wait()  # its run ends (no next voice starts)
            await self.player.close()  # nothing plays, nothing starts, the history writes have finished
            await self.text_panel.progress.wait_kept()  # and the read-along timings that go with them
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
