"""The provider panel: which server speaks (Built-in, OpenAI, Kokoro-FastAPI, Custom), its key, and the
model/voice/format/speed/instructions of the next Speak, filled from what the server lists.

Threads: GUI thread only (which under qasync is also the asyncio loop's thread). Listing models/voices and
"Test connection" are coroutines on that loop (voicegui.providers, httpx2); a generation counter drops the
answer of a listing that a newer one (another provider, another URL) overtook. The built-in server object
is only read here (base_url, token, default model/voice); the app owns its life.

The API key is shown masked, stored through settings.KeyStore (keyring, or memory only) when editing
finishes, and never logged, saved to the settings file or put in a message.

On connect (provider change, Base URL edit, Test connection) the server's profile is detected
(providers.detect_profile): its summary is shown read-only under the voice, stored per provider in the
settings, and decides the speed range, whether the Realtime models are offered (only when the server lists
them, or OpenAI itself: never OpenAI's list for another server) and the `"stream": true` flag. The user's
own choices for the server (ui/server_options.py) override it.

What a server says (connection errors, model and voice names) is shown in PlainLabels (ui/safe_text.py):
plain text, redacted, cut to a sentence's length; a server's HTML is never rendered. A Base URL that
would send the key in clear (plain http to another machine, ws://) gets a visible warning under the field,
updated as it is typed (`insecure_note`, the CLI's stream.fetch.insecure_http_warning).

Voices: the Voice box holds every voice the server lists (readable labels, never narrowed) and takes a typed
id (a Kokoro blend); under it the voice browser (ui/voice_picker.py) searches and groups them, picks one only
on a click or Enter, and asks for a preview (`preview_requested(voice_id)`, for the window's player). Controls
that do nothing say so where they are: the built-in voices ignore the model (the field is replaced by that
sentence), a model that takes no instructions hides the box behind the reason, and OpenAI's shutdown notice
shows only for OpenAI itself (base URL api.openai.com), not for a Custom server that names a model "tts-1".
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)
from qasync import asyncSlot

from voicegui import providers as pv
from voicegui.formats import FORMATS
from voicegui.limits import SPEED_RANGE
from voicegui.openai_models import DEFAULT_REALTIME_MODEL, is_realtime_model, shutdown_notice
from voicegui.request_extras import ExtrasError, parse_voice, request_extra_body
from voicegui.server_profile import ServerProfile, builtin_profile, openai_profile
from voicegui.settings import KeyStore, Settings
from voicegui.stream.fetch import insecure_http_warning
from voicegui.ui.safe_text import PlainLabel, plain_tooltip
from voicegui.ui.server_options import ServerOptions
from voicegui.ui.voice_picker import VoicePicker, voice_label


def insecure_url_warning(url: str) -> str | None:
    """The warning for a Base URL that sends the key in clear, else None: plain http to another machine
    (stream.fetch.insecure_http_warning, the CLI's warning) or an unencrypted websocket (ws://) to one."""
    scheme, sep, rest = url.strip().partition("://")
    if sep and scheme.lower() == "ws":
        if insecure_http_warning("http://" + rest) is None:
            return None  # loopback: the bytes never leave this machine
        host = rest.split("/", 1)[0]
        return (f"warning: ws://{host} is an unencrypted websocket to another machine: the API key and the "
                "text are sent unencrypted; use wss if the server offers it.")
    return insecure_http_warning(url)


def combo_voice_id(combo: QComboBox) -> str:
    """The id behind an editable voice combo box: the selected item's id (its data; the text is a label), or
    what the user typed when it is no item's text (e.g. a Kokoro blend "af_bella+af_sky")."""
    text = combo.currentText().strip()
    index = combo.currentIndex()
    if index >= 0 and combo.itemText(index) == text:
        return str(combo.itemData(index))
    return text

log = logging.getLogger(__name__)

# What a Speak through the built-in provider gets before the server is up (the window queues its own Speak
# instead; the line-up and A/B tabs show this). The window clears it once the voices are ready.
BUILTIN_STARTING = "The built-in voices are still starting; try again in a moment."
# How long a closing window waits for the listings/tests it cancelled to end (each ends within a few loop
# steps once cancelled; a bound, so that a stuck one cannot hold the window open).
IN_FLIGHT_CLOSE_S = 2.0


def _buddy(text: str, widget: QWidget) -> QLabel:
    """A form label whose mnemonic (Alt+letter) focuses `widget`; QFormLayout only sets buddies itself
    when the field is a widget, not a layout."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def _stacked(row: QHBoxLayout, *notes: QLabel) -> QVBoxLayout:
    """A field row with notes under it, tight."""
    column = QVBoxLayout()
    column.setSpacing(2)
    column.addLayout(row)
    for note in notes:
        column.addWidget(note)
    return column


class ShutdownWarning(QFrame):
    """A yellow strip: the model's shutdown notice and a button to switch to the Realtime successor."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shutdownWarning")
        self.setStyleSheet("#shutdownWarning { background: #fff4e5; border: 1px solid #ffcc80; border-radius: 4px; }"
                           "#shutdownWarning QLabel { color: #663c00; }")
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(18, 18))
        self.label = PlainLabel()  # the notice may quote the server's model list
        self.label.setWordWrap(True)
        self.switch_button = QPushButton(f"S&witch to {DEFAULT_REALTIME_MODEL}")
        self.switch_button.setToolTip("Use OpenAI's Realtime model, with the nearest Realtime voice")
        top = QHBoxLayout()
        top.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(top)
        layout.addWidget(self.switch_button, 0, Qt.AlignmentFlag.AlignRight)
        self.hide()

    def text(self) -> str:
        return self.label.text()


class ProviderPanel(QGroupBox):
    """Provider, key, model, voice, format, speed and instructions. `model_changed` fires with the model id
    whenever the effective model changes (the window shows/hides the transcript on it)."""

    model_changed = Signal(str)
    provider_changed = Signal(str)
    preview_requested = Signal(str)  # a voice id: the window speaks voice_picker.PREVIEW_TEXT in it

    def __init__(self, settings: Settings, keys: KeyStore, parent: QWidget | None = None) -> None:
        super().__init__("Provider", parent)
        self._settings = settings
        self._keys = keys
        self._builtin: Any = None  # BuiltinServer once the app has started it
        self._builtin_error: str | None = None
        self._provider = ""
        self._list_generation = 0
        self._models: list[pv.ModelInfo] = []
        self._models_from_server = False
        self._voices: list[pv.VoiceEntry] = []
        self._closed = False  # the window is going: answers still in flight must not touch the widgets
        self._in_flight: set[asyncio.Task[Any]] = set()  # listing/test tasks awaiting a server (close cancels)

        self.provider = QComboBox()
        for p in pv.PROVIDERS.values():
            self.provider.addItem(p.label, p.id)
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
        url_row = QHBoxLayout()
        url_row.addWidget(self.base_url, 1)
        # The key and the text would travel unencrypted: say so where the URL is typed, not only in the CLI.
        self.insecure_note = PlainLabel()
        self.insecure_note.setObjectName("insecureUrlWarning")
        self.insecure_note.setWordWrap(True)
        self.insecure_note.setStyleSheet("color: #a33b00;")
        self.insecure_note.hide()
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.test_button = QPushButton("&Test connection")
        self.test_button.setToolTip("Ask the server for its models and voices with this key")
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.test_button)
        self.key_note = PlainLabel()
        self.key_note.setWordWrap(True)
        self.key_note.setEnabled(False)  # dimmed hint
        self.connection = PlainLabel()  # quotes the server: plain text (see the module docstring)
        self.connection.setWordWrap(True)
        self.connection.setObjectName("connectionStatus")
        self.connection.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        # Said where the field would be: the built-in server routes by voice alone (server/engines/builtin.py).
        self.model_note = PlainLabel("The built-in voices ignore the model: the voice alone picks the engine.")
        self.model_note.setObjectName("modelNote")
        self.model_note.setWordWrap(True)
        self.model_note.hide()
        # Where it stands in for the field it must be as wide as one: a wrapping label alone would shrink.
        self.model_note.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.voice = QComboBox()
        self.voice.setEditable(True)
        self.voice.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.voice.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        voice_row = QHBoxLayout()
        voice_row.addWidget(self.voice, 1)
        self.picker = VoicePicker()
        self.voice_filter = self.picker.filter
        self.voice_hint = PlainLabel()
        self.voice_hint.setWordWrap(True)
        self.voice_hint.setEnabled(False)
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.speed = QDoubleSpinBox()
        self.speed.setDecimals(2)
        self.speed.setSingleStep(0.05)
        self.speed.setRange(*SPEED_RANGE)
        self.speed.setSuffix(" ×")
        self.instructions = QPlainTextEdit()
        self.instructions.setPlaceholderText("How to speak, e.g. \"Calm and warm, a little slower.\"")
        self.instructions.setTabChangesFocus(True)
        self.instructions.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        # A disabled box looks editable: when the model takes no instructions the box goes and this says why.
        self.instructions_note = PlainLabel()
        self.instructions_note.setObjectName("instructionsNote")
        self.instructions_note.setWordWrap(True)
        self.instructions_note.hide()
        self.instructions_note.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        instructions_row = QHBoxLayout()
        instructions_row.addWidget(self.instructions, 1)
        self.warning = ShutdownWarning()
        self.server = ServerOptions(settings)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Pro&vider", self.provider)
        form.addRow(_buddy("Base &URL", self.base_url), _stacked(url_row, self.insecure_note))
        # The notes sit under their field in one form row: a hidden or empty note then takes no height,
        # where a form row of its own would keep its spacing (and make the tab scroll at the default size).
        form.addRow(_buddy("API &key", self.api_key), _stacked(key_row, self.key_note, self.connection))
        form.addRow(_buddy("&Model", self.model), _stacked(model_row, self.model_note))
        form.addRow(_buddy("V&oice", self.voice), _stacked(voice_row, self.voice_hint))
        form.addRow(_buddy("Fin&d", self.picker.filter), self.picker)
        form.addRow("&Format", self.format)
        form.addRow("S&peed", self.speed)
        form.addRow(_buddy("&Instructions", self.instructions), _stacked(instructions_row, self.instructions_note))
        form.addRow("Server", self.server)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        # self.warning is placed by the window (next to Speak), where it cannot scroll out of view.
        layout.addStretch(1)  # spare height goes below the fields, not between them

        # restore
        self.format.setCurrentText(settings.format)
        self.speed.setValue(settings.speed)
        self.instructions.setPlainText(settings.instructions)

        self.provider.currentIndexChanged.connect(self._on_provider_index)
        self.api_key.editingFinished.connect(self.store_key)
        self.base_url.editingFinished.connect(self._on_base_url_edited)
        self.base_url.textChanged.connect(self._update_insecure_note)
        self.test_button.clicked.connect(self.test_connection)
        self.model.currentTextChanged.connect(self._on_model_text)
        self.voice.currentIndexChanged.connect(lambda _i: self.picker.set_chosen(self.voice_id()))
        self.voice.editTextChanged.connect(lambda _t: self.picker.set_chosen(self.voice_id()))
        self.picker.voice_chosen.connect(self._on_voice_picked)
        self.picker.preview_requested.connect(self.preview_requested)
        self.warning.switch_button.clicked.connect(self.switch_to_realtime)
        self.server.changed.connect(lambda: self._on_model_text(self.model_id()))
        self.server.blends.blend_chosen.connect(self._use_blend)

        index = self.provider.findData(settings.provider)
        self.provider.blockSignals(True)
        self.provider.setCurrentIndex(max(0, index))
        self.provider.blockSignals(False)
        self._enter_provider(self.provider_id())

    # --- reading ---------------------------------------------------------------------------------------
    def provider_id(self) -> str:
        return str(self.provider.currentData())

    def model_id(self) -> str:
        return self.model.currentText().strip()

    def voice_id(self) -> str:
        """The voice id: the selected item's id, or what the user typed (e.g. a Kokoro blend)."""
        return combo_voice_id(self.voice)

    def voice_request(self) -> tuple[str, bool]:
        """(voice id, send it as {"id": ...}): what was typed may be a voice object; ValueError with the
        sentence for the user if it is a broken one."""
        try:
            return parse_voice(self.voice_id())
        except ExtrasError as exc:
            raise ValueError(str(exc)) from exc

    def profile(self) -> ServerProfile:
        """The server's profile with the user's overrides (for the current model's pcm rate)."""
        return self.server.profile(self.model_id())

    def extra_body(self) -> dict[str, Any]:
        """The request body fields beyond OpenAI's: the stream flag, lang_code, the user's extra JSON.
        ValueError with the sentence shown under a server option that is still invalid."""
        problem = self.server.problem()
        if problem:
            raise ValueError(problem)
        return request_extra_body(self.profile().send_stream, self.server.lang_code_value(),
                                  self.server.extra_body_value())

    def stream_format(self) -> str:
        """The audio transport chosen for this provider under Server options ("audio" or "sse")."""
        return self.server.stream_format_value()

    def stream_field_auto(self) -> bool:
        """The "stream" field sent is the profile's default, not the user's choice (stream/fetch.py may drop it
        for a server that refuses it)."""
        return self.profile().send_stream and self.server.stream_is_detected()

    def pcm_rate(self) -> int | None:
        """The raw-pcm rate: the user's override, else what /models says for this model (None: the response's
        headers decide, else 24 kHz)."""
        return self.profile().pcm_rate_for(self.model_id())

    def _use_blend(self, text: str) -> None:
        self.voice.setEditText(text)

    def voice_choices(self) -> list[tuple[str, str]]:
        """(voice id, readable label) of every voice the provider lists, in its order (the line-up and A/B
        tabs offer them all)."""
        return [(v.id, self._label(v)) for v in self._voices]

    def voice_names(self) -> list[tuple[str, str]]:
        """(voice id, the server's name) of every voice, in its order: what a VoicePicker groups."""
        return [(v.id, v.name) for v in self._voices]

    def endpoint(self) -> tuple[str, str]:
        """(base URL, key) to send requests to; ValueError with a message for the user if there is none."""
        pid = self.provider_id()
        if pid == pv.BUILTIN:
            if self._builtin is None:
                raise ValueError(self._builtin_error or BUILTIN_STARTING)
            return self._builtin.base_url, self._builtin.token
        url = self.base_url.text().strip()
        if not url:
            raise ValueError("Enter the provider's base URL.")
        key = self.api_key.text().strip()
        if pv.PROVIDERS[pid].needs_key and not key:
            raise ValueError(f"Enter your {pv.PROVIDERS[pid].label} API key.")
        return url, key

    def speed_value(self) -> float | None:
        v = round(self.speed.value(), 2)
        return None if v == 1.0 else v  # leave the server's default alone

    def instructions_value(self) -> str | None:
        if not self.instructions.isEnabled():
            return None
        return self.instructions.toPlainText().strip() or None

    def response_format(self) -> str:
        return "pcm" if pv.forces_pcm(self.model_id()) else self.format.currentText()

    def store_into(self, s: Settings) -> None:
        """Copy what is shown into `s` (everything but the key)."""
        # The fields show the provider last entered; during a switch the combo already names the new one.
        pid = self._provider or self.provider_id()
        s.provider = pid
        if pv.PROVIDERS[pid].url_editable and self.base_url.text().strip():
            s.base_urls[pid] = self.base_url.text().strip()
        if self.model_id():
            s.models[pid] = self.model_id()
        if self.voice_id():
            s.voices[pid] = self.voice_id()
        s.format = self.format.currentText()
        s.speed = round(self.speed.value(), 2)
        s.instructions = self.instructions.toPlainText()

    def close_panel(self) -> None:
        """The window is closing: drop the answers of listings and tests still in flight, and cancel them.

        Cancelled, not only ignored: a request still awaiting its server when the loop stops would otherwise be
        resumed by Qt's event processing outside the asyncio loop (the HTTP client then fails with "no running event
        loop")."""
        self._closed = True
        self._list_generation += 1
        for task in list(self._in_flight):
            task.cancel()

    async def wait_closed(self) -> None:
        """After close_panel(): wait (at most IN_FLIGHT_CLOSE_S) until the cancelled tasks have ended.

        A cancel is only a request: the HTTP client still closes its connection over a few more loop steps, and
        a loop that stopped first would leave those steps to Qt's event processing outside the loop, where the
        client fails with "no running event loop" (qasync processes Qt's events once more after its loop stops)."""
        pending = [task for task in self._in_flight if not task.done()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=IN_FLIGHT_CLOSE_S)
        if still:
            log.warning("%d server request(s) did not end within %.0f s of the window closing", len(still),
                        IN_FLIGHT_CLOSE_S)

    def _track_in_flight(self) -> None:
        """Register the running listing/test task so close_panel() can cancel it."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    # --- built-in server -------------------------------------------------------------------------------
    def set_builtin(self, server: Any) -> None:
        """The app's BuiltinServer is running: list its models and voices if it is the provider shown."""
        self._builtin = server
        self._builtin_error = None
        if self.provider_id() == pv.BUILTIN:
            self._enter_provider(pv.BUILTIN)

    def set_builtin_error(self, message: str) -> None:
        self._builtin_error = message
        if self.provider_id() == pv.BUILTIN:
            self.connection.setText(message)

    # --- provider switching ----------------------------------------------------------------------------
    def set_provider(self, pid: str) -> None:
        self.provider.setCurrentIndex(self.provider.findData(pid))

    def _on_provider_index(self, _index: int) -> None:
        self._enter_provider(self.provider_id())

    def _enter_provider(self, pid: str) -> None:
        if self._provider:
            self.store_into(self._settings)  # remember the old provider's model/voice/URL
            self._settings.provider = pid
        self._provider = pid
        prov = pv.PROVIDERS[pid]
        builtin = pid == pv.BUILTIN
        self.base_url.setReadOnly(not prov.url_editable)
        if builtin:
            self.base_url.setText(self._builtin.base_url if self._builtin is not None else "")
            self.base_url.setPlaceholderText("starting the built-in voices…")
            self.api_key.clear()
            self.api_key.setEnabled(False)
            self.api_key.setPlaceholderText("not needed: the built-in voices use an internal token")
            self.key_note.hide()
        else:
            self.base_url.setText(self._settings.base_url_for(pid))
            self.base_url.setPlaceholderText("OpenAI-compatible base URL, e.g. https://api.openai.com/v1")
            self.api_key.setEnabled(True)
            self.api_key.setText(self._keys.get(pid))
            self.api_key.setPlaceholderText("API key" + ("" if prov.needs_key else " (if the server wants one)"))
            self.key_note.setText(self._keys.warning or "")
            self.key_note.setVisible(bool(self._keys.warning))
        self.connection.clear()
        self.server.enter_provider(pid, self._known_profile(pid))
        if pid in pv.OPENAI_FAMILY:
            models = pv.known_models()
        else:
            # Until the server answers: only the model last used with it, never OpenAI's list (its Realtime
            # models fail on servers without the Realtime API).
            models = [pv.ModelInfo(self._settings.model_for(pid))]
        self._set_models(models, False, self._settings.model_for(pid))
        # OpenAI's voice names only for OpenAI: they fail on other servers (the saved voice stays typed in)
        self._set_voices(pv.known_voices(self.model_id()) if pid in pv.OPENAI_FAMILY else [],
                         self._settings.voice_for(pid))
        self.provider_changed.emit(pid)
        self._schedule_refresh()

    def _known_profile(self, pid: str) -> ServerProfile:
        """The profile to show before (or without) a connection: OpenAI's, else the one stored last time."""
        if pid in pv.OPENAI_FAMILY and pv.is_openai_url(self._settings.base_url_for(pid)):
            return openai_profile()
        try:
            stored = self._settings.profile_for(pid)
        except ValueError:  # validated on load; a bad one here is no reason to fail the panel
            stored = None
        if stored is not None:
            return stored
        return builtin_profile() if pid == pv.BUILTIN else ServerProfile()

    def _schedule_refresh(self) -> None:
        pid = self.provider_id()
        if pid == pv.BUILTIN and self._builtin is None:
            if self._builtin_error:
                self.connection.setText(self._builtin_error)
            return
        if pid in pv.OPENAI_FAMILY and not self.api_key.text().strip():
            # No point asking OpenAI without a key; the known lists are already shown.
            self.connection.setText("Enter your OpenAI API key, then Test connection.")
            return
        self.refresh_lists()

    def _update_insecure_note(self, url: str) -> None:
        """Warn under the Base URL while it would send the key in clear (plain http off this machine, ws://)."""
        warning = None if self.provider_id() == pv.BUILTIN else insecure_url_warning(url)
        self.insecure_note.setText(warning or "")
        self.insecure_note.setVisible(warning is not None)

    def _on_base_url_edited(self) -> None:
        if pv.PROVIDERS[self.provider_id()].url_editable:
            self._settings.base_urls[self.provider_id()] = self.base_url.text().strip()
            self._update_warning()  # OpenAI's shutdown notice depends on the URL being OpenAI's
            self._schedule_refresh()

    def store_key(self) -> None:
        pid = self._provider or self.provider_id()
        if pid != pv.BUILTIN:
            self._keys.set(pid, self.api_key.text().strip())
            if self._keys.warning:
                self.key_note.setText(self._keys.warning)
                self.key_note.show()

    # --- lists ------------------------------------------------------------------------------------------
    @asyncSlot()
    async def refresh_lists(self) -> None:
        """Fill the model and voice pickers from the server; keep the known lists if it cannot answer."""
        if self._closed:
            return  # scheduled just before the window closed
        self._track_in_flight()
        self._list_generation += 1
        generation = self._list_generation
        pid = self.provider_id()
        try:
            url, key = self.endpoint()
        except ValueError:
            return
        model = self.model_id()
        try:
            found = await pv.detect_profile(url, key, model)
        except pv.ProviderError as exc:
            if generation == self._list_generation and not self._closed:
                self.connection.setText(f"{exc} Showing the models and voices last known.")
            return
        if self._closed or generation != self._list_generation or pid != self.provider_id():
            return  # overtaken by another provider/URL
        models, voices = found.models, found.voices
        self._settings.profiles[pid] = found.profile.to_json()
        self.server.show_profile(found.profile, [v.id for v in voices])
        wanted_model = model if pid != pv.BUILTIN or self._builtin is None else model or self._builtin.default_model
        self._set_models(models, True, wanted_model)
        wanted_voice = self.voice_id()
        if pid == pv.BUILTIN and wanted_voice not in {v.id for v in voices}:
            wanted_voice = self._builtin.default_voice
        self._set_voices(voices, wanted_voice)
        # No list (a server that offers none): say so; the model and voice boxes stay editable for a typed id.
        self.connection.setText(" ".join(r for r in (models.reason, voices.reason) if r)
                                or f"{len(models)} models, {len(voices)} voices from {url}.")

    @asyncSlot()
    async def test_connection(self) -> None:
        if self._closed:
            return
        self._track_in_flight()
        self.store_key()
        self.test_button.setEnabled(False)
        try:
            try:
                url, key = self.endpoint()
            except ValueError as exc:
                self.connection.setText(str(exc))
                return
            self.connection.setText(f"Connecting to {url}…")
            message = await pv.test_connection(url, key)
            if self._closed:
                return
            self.connection.setText(message)
            if message.startswith("Connected"):
                await self.refresh_lists()
                if not self._closed:
                    self.connection.setText(message)
        finally:
            if not self._closed:
                self.test_button.setEnabled(True)

    def _set_models(self, models: list[pv.ModelInfo], from_server: bool, wanted: str) -> None:
        models = pv.models_for(self.provider_id(), models)
        if not self.server.profile().offers_realtime:
            models = [m for m in models if not is_realtime_model(m.id)]
        self._models, self._models_from_server = models, from_server
        ids = [m.id for m in models]
        if wanted not in ids and from_server and self.provider_id() == pv.BUILTIN and ids:
            wanted = ids[0]
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(ids)
        self.model.setCurrentText(wanted)
        self.model.blockSignals(False)
        self._on_model_text(self.model_id())

    def _set_voices(self, voices: list[pv.VoiceEntry], wanted: str) -> None:
        self._voices = voices
        self.voice_hint.setText(pv.voices_hint(voices) or "")
        self.voice_hint.setVisible(bool(self.voice_hint.text()))
        self._fill_voices(wanted)

    @staticmethod
    def _label(v: pv.VoiceEntry) -> str:
        return voice_label(v.id, v.name)

    def _fill_voices(self, wanted: str | None = None) -> None:
        """Rebuild the Voice box (every voice: the search box narrows only the browser under it) and the
        browser, keeping `wanted` (default: the voice shown) chosen."""
        wanted = self.voice_id() if wanted is None else wanted
        self.voice.blockSignals(True)
        self.voice.clear()
        for i, v in enumerate(self._voices):
            self.voice.addItem(self._label(v), v.id)
            self.voice.setItemData(i, plain_tooltip(v.name if v.name == v.id else f"{v.name}\nid: {v.id}"),
                                   Qt.ItemDataRole.ToolTipRole)
        index = self.voice.findData(wanted)
        if index >= 0:
            self.voice.setCurrentIndex(index)
        else:
            self.voice.setEditText(wanted)
        self.voice.blockSignals(False)
        # The popup is as wide as the longest name, so no name is cut (only elided when the screen is smaller).
        self.voice.view().setMinimumWidth(self.voice.view().sizeHintForColumn(0) + 24)
        self.picker.set_voices(self.voice_names(), self.voice_id())

    def _on_voice_picked(self, vid: str) -> None:
        """A click or Enter in the browser: the only way it changes the voice."""
        index = self.voice.findData(vid)
        if index >= 0:
            self.voice.setCurrentIndex(index)
        else:
            self.voice.setEditText(vid)

    # --- capabilities -----------------------------------------------------------------------------------
    def _on_model_text(self, _text: str) -> None:
        model = self.model_id()
        lo, hi = pv.speed_range(model) if is_realtime_model(model) else self.server.profile(model).speed_range
        self.speed.setRange(lo, hi)  # clamps the value into range
        profile = self.server.profile(model)
        self.speed.setToolTip(plain_tooltip(f"{lo:g}–{hi:g}" + ("" if profile.speed_verified or
                                                                 "speed" in profile.overridden else
                                                                 ": this server's range is unverified")))
        takes = pv.supports_instructions(model)
        builtin = self.provider_id() == pv.BUILTIN
        self.instructions.setEnabled(takes)
        self.instructions.setVisible(takes)
        self.instructions_note.setText("" if takes else "The built-in voices take no instructions." if builtin else
                                       f"{model or 'This model'} takes no instructions (gpt-4o-mini-tts and the "
                                       "Realtime models do); what is typed is kept for a model that does.")
        self.instructions_note.setVisible(not takes)
        self.model.setVisible(not builtin)
        self.model_note.setVisible(builtin)
        pcm_only = pv.forces_pcm(model)
        self.format.setEnabled(not pcm_only)
        self.format.setToolTip("The Realtime API always sends pcm." if pcm_only else "")
        if self.provider_id() in pv.OPENAI_FAMILY and not self._models_from_server:
            # OpenAI has no voices endpoint: the Realtime models have fewer voices than /audio/speech.
            self._set_voices(pv.known_voices(model), self.voice_id())
        self._update_warning()
        self.model_changed.emit(model)

    def _update_warning(self) -> None:
        model = self.model_id()
        if not model or not pv.is_openai_url(self.base_url.text()):
            notice = None  # OpenAI's dates: a Custom server's "tts-1" is not shut down with OpenAI's
        else:
            payload = pv.models_payload(self._models) if self._models_from_server else None
            notice = shutdown_notice(model, payload)
        self.warning.label.setText(notice or "")
        self.warning.setVisible(notice is not None)
        # Realtime only where the server has it (OpenAI, or a server listing Realtime models)
        realtime = self.server.profile().offers_realtime or self.provider_id() in pv.OPENAI_FAMILY
        self.warning.switch_button.setVisible(notice is not None and model != DEFAULT_REALTIME_MODEL and realtime)

    def switch_to_realtime(self) -> None:
        """Use gpt-realtime-2.1-mini with the nearest Realtime voice (fable/onyx/nova -> marin); from OpenAI,
        by switching to the "OpenAI Realtime" provider (same key)."""
        voice = pv.realtime_voice_for(self.voice_id())
        if self.provider_id() == pv.OPENAI:
            self._settings.models[pv.OPENAI_REALTIME] = DEFAULT_REALTIME_MODEL
            self._settings.voices[pv.OPENAI_REALTIME] = voice
            self.set_provider(pv.OPENAI_REALTIME)
        if self.model.findText(DEFAULT_REALTIME_MODEL) < 0:
            self.model.addItem(DEFAULT_REALTIME_MODEL)
        self.model.setCurrentText(DEFAULT_REALTIME_MODEL)
        if self.provider_id() in pv.OPENAI_FAMILY and not self._models_from_server:
            self._set_voices(pv.known_voices(DEFAULT_REALTIME_MODEL), voice)
        else:
            self._fill_voices(voice)
        self.voice.setCurrentText(self._label(pv.VoiceEntry(voice, voice.capitalize())))
        index = self.voice.findData(voice)
        if index >= 0:
            self.voice.setCurrentIndex(index)

    def is_realtime(self) -> bool:
        return is_realtime_model(self.model_id())
