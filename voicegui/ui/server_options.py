"""The provider panel's server part: what the server is (its detected profile, one read-only line) and the
user's choices for it, per provider: own speed range, the `"stream": true` flag, a raw-pcm rate, Kokoro's
lang_code, a voice-blend editor and a free-form extra JSON body.

Every choice is checked as it is typed (voicegui.request_extras, server_profile.override_problem): a bad
value shows one sentence under its field and is not stored, so a typo never waits for Speak time; a good one
goes straight into `Settings.provider_options[provider]`. The options are folded away behind a button so
the panel keeps its height; the summary line stays visible.

Threads: GUI thread only. No I/O: the provider panel detects the profile and hands it in (`show_profile`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from voicegui.formats import PCM_RATES
from voicegui.limits import SPEED_RANGE
from voicegui.request_extras import ExtrasError, blend, lang_code_problem, parse_extra_body
from voicegui.server_profile import ServerProfile, override_problem, with_overrides
from voicegui.ui.safe_text import PlainLabel

STREAM_CHOICES: list[tuple[str, bool | None]] = [("as detected", None), ("yes", True), ("no", False)]
TRANSPORT_CHOICES: list[tuple[str, str]] = [("audio body", "audio"), ("Server-Sent Events (sse)", "sse")]


def _error_label() -> PlainLabel:
    label = PlainLabel()
    label.setWordWrap(True)
    label.setStyleSheet("color: #a33b00;")
    label.hide()
    return label


def _buddy(text: str, widget: QWidget) -> QLabel:
    """A form label whose mnemonic focuses `widget` (QFormLayout sets no buddy when the field is a layout)."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def _show(label: PlainLabel, text: str | None) -> None:
    label.setText(text or "")
    label.setVisible(bool(text))


class BlendEditor(QWidget):
    """Kokoro voice blends: pick voices and weights, "Use as voice" emits "af_bella(2)+af_sky(1)"."""

    blend_chosen = Signal(str)
    ROWS = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.pickers: list[tuple[QComboBox, QDoubleSpinBox]] = []
        for _ in range(self.ROWS):
            combo, weight = QComboBox(), QDoubleSpinBox()
            weight.setRange(0.0, 10.0)
            weight.setSingleStep(0.5)
            weight.setDecimals(1)
            weight.setValue(1.0)
            weight.setToolTip("Weight of this voice in the blend")
            row = QHBoxLayout()
            row.addWidget(combo, 1)
            row.addWidget(weight)
            layout.addLayout(row)
            self.pickers.append((combo, weight))
        self.use_button = QPushButton("Use &blend as voice")
        self.error = _error_label()
        layout.addWidget(self.use_button)
        layout.addWidget(self.error)
        self.use_button.clicked.connect(self._use)

    def set_voices(self, ids: list[str]) -> None:
        for combo, _weight in self.pickers:
            keep = combo.currentData()
            combo.clear()
            combo.addItem("—", "")
            for vid in ids:
                combo.addItem(vid, vid)
            index = combo.findData(keep)
            combo.setCurrentIndex(max(0, index))

    def parts(self) -> list[tuple[str, float]]:
        return [(str(c.currentData()), w.value()) for c, w in self.pickers if c.currentData()]

    def text(self) -> str:
        """The blend of the picked voices; ExtrasError with a sentence if there is none or it is invalid."""
        return blend(self.parts())

    def _use(self) -> None:
        try:
            text = self.text()
        except ExtrasError as exc:
            _show(self.error, str(exc))
            return
        _show(self.error, None)
        self.blend_chosen.emit(text)


class ServerOptions(QWidget):
    """The profile summary and the per-provider options (see the module docstring)."""

    changed = Signal()  # an option was stored: speed range, stream flag, ...

    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._provider = ""
        self._profile = ServerProfile()
        self._loading = False

        self.summary = PlainLabel()
        self.summary.setObjectName("profileSummary")
        self.summary.setWordWrap(True)
        self.summary.setEnabled(False)  # read-only, dimmed like the other notes
        self.toggle = QPushButton("Server optio&ns…")
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("Speed range, \"stream\": true, pcm rate, Kokoro blends and lang_code, extra JSON")
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(self.toggle)

        self.own_speed = QCheckBox("Own speed range")
        self.speed_min, self.speed_max = QDoubleSpinBox(), QDoubleSpinBox()
        for box, value in ((self.speed_min, SPEED_RANGE[0]), (self.speed_max, SPEED_RANGE[1])):
            box.setRange(*SPEED_RANGE)
            box.setDecimals(2)
            box.setSingleStep(0.05)
            box.setValue(value)
        speed_row = QHBoxLayout()
        for w in (self.own_speed, self.speed_min, self.speed_max):
            speed_row.addWidget(w)
        self.speed_error = _error_label()
        self.stream = QComboBox()
        for label, _value in STREAM_CHOICES:
            self.stream.addItem(label)
        self.stream.setToolTip('Send "stream": true: Kokoro ONNX servers and LocalAI stream only when asked')
        self.transport = QComboBox()
        for label, _kind in TRANSPORT_CHOICES:
            self.transport.addItem(label)
        self.transport.setToolTip('How the audio comes: the body itself, or base64 in Server-Sent Events '
                                  '(stream_format "sse": OpenAI\'s gpt-4o-mini-tts and newer, speaches, vLLM-Omni)')
        self.pcm_rate = QSpinBox()
        self.pcm_rate.setRange(0, PCM_RATES.stop - 1)
        self.pcm_rate.setSpecialValueText("as announced")
        self.pcm_rate.setSuffix(" Hz")
        self.pcm_rate.setToolTip("The sample rate of raw pcm from this server (Piper voices: 22050), when it "
                                 "does not say")
        self.pcm_error = _error_label()
        self.lang_code = QLineEdit()
        self.lang_code.setPlaceholderText("from the voice (a: American English, b: British English, ...)")
        self.lang_code.setMaxLength(20)
        self.lang_error = _error_label()
        self.blends = BlendEditor()
        self.extra_body = QPlainTextEdit()
        self.extra_body.setPlaceholderText('More request fields as JSON, sent as given, e.g. {"seed": 42}')
        self.extra_body.setTabChangesFocus(True)
        self.extra_body.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        self.extra_error = _error_label()
        self.extra_error.setObjectName("extraBodyError")

        self.details = QWidget()
        form = QFormLayout(self.details)
        form.setContentsMargins(0, 0, 0, 0)
        # Mnemonics: letters the provider panel's other fields leave free.
        form.addRow(_buddy("Spee&d range", self.own_speed), self._stacked(speed_row, self.speed_error))
        form.addRow(_buddy("Ask the server to stre&am", self.stream), self.stream)
        form.addRow(_buddy("Audio &transport", self.transport), self.transport)
        form.addRow(_buddy("Raw pcm rat&e", self.pcm_rate), self._stacked(self._row(self.pcm_rate), self.pcm_error))
        self._lang_row = form.rowCount()
        form.addRow(_buddy("Lan&guage code", self.lang_code),
                    self._stacked(self._row(self.lang_code), self.lang_error))
        self._blend_row = form.rowCount()
        form.addRow(_buddy("B&lend voices", self.blends.pickers[0][0]), self.blends)
        form.addRow(_buddy("Extra &JSON body", self.extra_body),
                    self._stacked(self._row(self.extra_body), self.extra_error))
        self._form = form
        self.details.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.details)

        self.toggle.toggled.connect(self.details.setVisible)
        self.own_speed.toggled.connect(self._store)
        self.speed_min.valueChanged.connect(self._store)
        self.speed_max.valueChanged.connect(self._store)
        self.stream.currentIndexChanged.connect(self._store)
        self.transport.currentIndexChanged.connect(self._store)
        self.pcm_rate.valueChanged.connect(self._store)
        self.lang_code.textChanged.connect(self._store)
        self.extra_body.textChanged.connect(self._store)

    @staticmethod
    def _row(widget: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(widget, 1)
        return row

    @staticmethod
    def _stacked(row: QHBoxLayout, note: PlainLabel) -> QVBoxLayout:
        column = QVBoxLayout()
        column.setSpacing(2)
        column.addLayout(row)
        column.addWidget(note)
        return column

    # --- what the panel asks ------------------------------------------------------------------------------
    def profile(self, model: str = "") -> ServerProfile:
        """The detected profile with the user's overrides applied."""
        return with_overrides(self._profile, self._settings.options_for(self._provider), model)

    def extra_body_value(self) -> dict[str, Any]:
        """The stored extra JSON body (only valid text is ever stored)."""
        return parse_extra_body(self._settings.options_for(self._provider).get("extra_body", ""))

    def stream_is_detected(self) -> bool:
        """Whether the "stream" flag is left "as detected" (voicegui's guess, which a strict server may refuse and
        then is dropped), not the user's own yes/no."""
        return STREAM_CHOICES[self.stream.currentIndex()][1] is None

    def stream_format_value(self) -> str:
        """The stored audio transport: "audio" (the body is the audio) or "sse"."""
        return str(self._settings.options_for(self._provider).get("stream_format", "audio"))

    def lang_code_value(self) -> str:
        return str(self._settings.options_for(self._provider).get("lang_code", "") if self._profile.lang_code
                   else "")

    def problem(self) -> str | None:
        """The first sentence still shown under a field (a value typed but not stored), else None."""
        for label in (self.extra_error, self.speed_error, self.lang_error, self.pcm_error):
            if label.text():  # the options may be folded away: the text, not the visibility, says it
                return label.text()
        return None

    # --- loading ------------------------------------------------------------------------------------------
    def enter_provider(self, pid: str, profile: ServerProfile) -> None:
        """Show `pid`'s stored options and `profile` (the detected or stored one)."""
        self._provider = pid
        options = self._settings.options_for(pid)
        self._loading = True
        try:
            has_speed = options.get("speed_min") is not None
            self.own_speed.setChecked(has_speed)
            self.speed_min.setEnabled(has_speed)
            self.speed_max.setEnabled(has_speed)
            self.speed_min.setValue(options.get("speed_min") or SPEED_RANGE[0])
            self.speed_max.setValue(options.get("speed_max") or SPEED_RANGE[1])
            self.stream.setCurrentIndex([v for _l, v in STREAM_CHOICES].index(options.get("stream")))
            self.transport.setCurrentIndex([v for _l, v in TRANSPORT_CHOICES].index(
                options.get("stream_format", "audio")))
            self.pcm_rate.setValue(options.get("pcm_rate") or 0)
            self.lang_code.setText(options.get("lang_code", ""))
            self.extra_body.setPlainText(options.get("extra_body", ""))
            for label in (self.extra_error, self.speed_error, self.lang_error, self.pcm_error):
                _show(label, None)
        finally:
            self._loading = False
        self.show_profile(profile)

    def show_profile(self, profile: ServerProfile, voice_ids: list[str] | None = None) -> None:
        self._profile = profile
        self.summary.setText(self.profile().summary())
        self._form.setRowVisible(self._lang_row, profile.lang_code)
        self._form.setRowVisible(self._blend_row, profile.blends)
        if voice_ids is not None:
            self.blends.set_voices(voice_ids)

    # --- storing ------------------------------------------------------------------------------------------
    def _store(self, *_args: Any) -> None:
        if self._loading or not self._provider:
            return
        options = self._settings.options_for(self._provider)
        for key in ("speed_min", "speed_max"):
            options.pop(key, None)
        self.speed_min.setEnabled(self.own_speed.isChecked())
        self.speed_max.setEnabled(self.own_speed.isChecked())
        speed: dict[str, Any] = {}
        if self.own_speed.isChecked():
            speed = {"speed_min": round(self.speed_min.value(), 2), "speed_max": round(self.speed_max.value(), 2)}
        problem = override_problem(speed)
        _show(self.speed_error, problem)
        if problem is None:
            options.update(speed)
        options["stream"] = STREAM_CHOICES[self.stream.currentIndex()][1]
        if TRANSPORT_CHOICES[self.transport.currentIndex()][1] == "sse":
            options["stream_format"] = "sse"
        else:
            options.pop("stream_format", None)  # the default is not stored
        rate = self.pcm_rate.value()
        rate_problem = None if rate == 0 else override_problem({"pcm_rate": rate})
        _show(self.pcm_error, rate_problem)
        if rate_problem is None:
            options["pcm_rate"] = rate or None
        code = self.lang_code.text().strip()
        lang_problem = lang_code_problem(code)
        _show(self.lang_error, lang_problem)
        if lang_problem is None:
            options["lang_code"] = code
        text = self.extra_body.toPlainText()
        try:
            parse_extra_body(text)
        except ExtrasError as exc:
            _show(self.extra_error, str(exc))
        else:
            _show(self.extra_error, None)
            options["extra_body"] = text
        cleaned = {k: v for k, v in options.items() if v not in (None, "")}
        if cleaned:
            self._settings.provider_options[self._provider] = cleaned
        else:
            self._settings.provider_options.pop(self._provider, None)
        self.summary.setText(self.profile().summary())
        self.changed.emit()
