"""Side panels of the main window: the TTFA/metrics readout and the tuning knobs used by the next Speak.

Threads: GUI thread only. The metrics panel polls the current session on a slow (~4 Hz) QTimer: text does
not need to change faster than people read. It reads only plain attributes the session publishes (fetch marks,
the first-decoded time, the output's first-sound time and device latency, written once by the loop or the
PortAudio callback thread) and ``snapshot()``; while the response streams it shows the stream speed over the
last second from its own readings (``StreamSpeed``); once a session has finished it shows the session's
immutable SessionMetrics. The tuning panel is plain widgets (plus presets and the output device list, read
from sounddevice once at start-up and named for people by ui/device_names.py); MainWindow reads
``TuningPanel.values()`` on Speak. The network simulator panel only emits a Shaping; MainWindow hands it to
the built-in server (a plain attribute swap), and shows its ``indicator`` ("Network simulator on") while it
slows the built-in voices.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from voicegui.limits import MAX_BLOCKSIZE, MAX_CHUNK_BYTES, MAX_MAX_BUFFER_S, MAX_PREBUFFER_MS, MIN_MAX_BUFFER_S
from voicegui.server.shaping import Shaping
from voicegui.settings import DEFAULT_PRESET, TUNING_FIELDS, TUNING_PRESETS, Settings
from voicegui.stream.latency_setting import parse_latency
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.output import OutputError, output_devices
from voicegui.stream.session import SpeakSession
from voicegui.ui.device_names import alias_of, device_choices, pulse_sinks

log = logging.getLogger(__name__)

SLOW_PERIOD_MS = 250  # ~4 Hz

# (key in TtfaMarks.breakdown_ms(), label shown)
BREAKDOWN_ROWS: tuple[tuple[str, str], ...] = (
    ("request_sent", "Request sent"),
    ("headers", "Response headers"),
    ("first_byte", "First byte"),
    ("first_decoded", "First decoded audio"),
    ("first_sound", "First sound to device"),
    ("device_latency", "Device latency"),
)
DASH = "—"
SIMULATOR_ON = "Network simulator on"


def format_ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f} ms"


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.2f} MB"


SPEED_WINDOW_S = 1.0  # the live stream speed is over this much of the latest wall time
SPEED_LEAST_S = 0.4  # ... and is not shown from less than this (two 4 Hz readings say little)


class StreamSpeed:
    """The live "Stream speed": seconds of audio received per wall second over the last ~SPEED_WINDOW_S,
    from readings of a session's received audio taken by the panel's slow timer (GUI thread)."""

    def __init__(self, session: SpeakSession | None = None) -> None:
        self.session = session
        self._readings: deque[tuple[float, float]] = deque()

    def add(self, now: float, audio_s: float) -> None:
        self._readings.append((now, audio_s))
        while len(self._readings) > 2 and now - self._readings[1][0] >= SPEED_WINDOW_S:
            self._readings.popleft()

    def rate(self) -> float | None:
        """Audio seconds per wall second over the readings kept, or None before there are enough of them."""
        if len(self._readings) < 2:
            return None
        (t0, a0), (t1, a1) = self._readings[0], self._readings[-1]
        return (a1 - a0) / (t1 - t0) if t1 - t0 >= SPEED_LEAST_S else None


def underrun_summary(episodes: int, silent_ms: float) -> str:
    """'3 underruns, 420 ms silent' (empty when there was none)."""
    if not episodes:
        return ""
    return f"{episodes} underrun{'s' if episodes != 1 else ''}, {silent_ms:.0f} ms silent"


def with_underruns(status: str, metrics: SessionMetrics | None) -> str:
    """The status line at the end of a Speak, with its underruns when it had any (they are what a listener
    heard as stutter, and the plots may be scrolled away or hidden)."""
    summary = "" if metrics is None else underrun_summary(metrics.underrun_episodes, metrics.underrun_ms)
    return f"{status}; {summary}" if summary else status


class TtfaPanel(QGroupBox):
    """One big number (click -> first sound, ms), its breakdown, and the stream's counters."""

    def __init__(self, source: Callable[[], SpeakSession | None], parent: QWidget | None = None) -> None:
        super().__init__("Time to first audio", parent)
        self._source = source
        self._shown_final: SpeakSession | None = None
        self._speed = StreamSpeed()

        self.big = QLabel(DASH)
        font = QFont(self.big.font())
        font.setPointSize(max(22, font.pointSize() * 2 + 6))
        font.setBold(True)
        self.big.setFont(font)
        self.big.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.big.setObjectName("ttfaValue")
        self.caption = QLabel("click → first sound")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setEnabled(False)  # the palette's dimmed text: it is a caption, not a value

        # Two columns (the breakdown | the counters) beside each other: the readout stays short, so the tabs
        # above it keep their height at the default window size.
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        self.breakdown: dict[str, QLabel] = {}
        for row, (key, label) in enumerate(BREAKDOWN_ROWS):
            value = QLabel(DASH)
            self.breakdown[key] = value
            self._add_row(grid, row, 0, label, value)
        self.underruns = QLabel(DASH)
        self.rtf = QLabel(DASH)
        self.bytes = QLabel(DASH)
        self.state = QLabel("idle")
        for row, (name, value) in enumerate((("Underruns", self.underruns), ("Stream speed", self.rtf),
                                             ("Bytes received", self.bytes), ("State", self.state))):
            self._add_row(grid, row, 2, name, value)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        layout = QVBoxLayout(self)
        layout.setSpacing(2)
        layout.addWidget(self.big)
        layout.addWidget(self.caption)
        layout.addLayout(grid)
        layout.addStretch(1)

        self.timer = QTimer(self)
        self.timer.setInterval(SLOW_PERIOD_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    @staticmethod
    def _add_row(grid: QGridLayout, row: int, column: int, name: str, value: QLabel) -> None:
        value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        grid.addWidget(QLabel(name), row, column)
        grid.addWidget(value, row, column + 1)

    def ttfa_text(self) -> str:
        return self.big.text()

    def reset(self) -> None:
        self._shown_final = None
        self._speed = StreamSpeed()
        self.big.setText("…")
        for value in self.breakdown.values():
            value.setText(DASH)
        for value in (self.underruns, self.rtf, self.bytes):
            value.setText(DASH)

    def refresh(self) -> None:
        if not self.isVisible():
            return
        session = self._source()
        if session is None or session is self._shown_final:
            return
        if session.metrics is not None:
            self.show_metrics(session.metrics)
            self._shown_final = session
            return
        self._show_live(session)

    def _show_live(self, session: SpeakSession) -> None:
        """While a Speak runs: the marks reached so far. The big number is the measured one as soon as the
        first non-silent sample has been handed to the device (the callback's mark); before that, "…"."""
        marks = session.marks()
        breakdown = marks.breakdown_ms()
        for key, _label in BREAKDOWN_ROWS:
            self.breakdown[key].setText(format_ms(breakdown.get(key)))
        # breakdown["first_sound"] is computed (and rounded) as SessionMetrics.ttfa_ms will be: no jump at the end.
        self.big.setText("…" if marks.first_sound is None else format_ms(breakdown["first_sound"]))
        snap = session.snapshot(arrays=False)
        if self._speed.session is not session:
            self._speed = StreamSpeed(session)
        if session.fetch_marks.first_byte is not None:
            self._speed.add(time.monotonic(), snap.audio_received_s)
        if snap.fetch_done and session.last_byte is not None and session.fetch_marks.first_byte is not None:
            # all of it is in: the whole stream's speed, as the final readout will say
            took = session.last_byte - session.fetch_marks.first_byte
            speed = snap.audio_received_s / took if took > 0 else None
        else:
            speed = self._speed.rate()
        self.rtf.setText(DASH if speed is None else f"{speed:.2f}× real time")
        self.underruns.setText(str(snap.underrun_episodes))
        self.bytes.setText(format_bytes(snap.bytes_received))
        self.state.setText(snap.state)

    def show_metrics(self, metrics: SessionMetrics) -> None:
        """The final, measured numbers of a finished Speak."""
        self.big.setText(format_ms(metrics.ttfa_ms))
        breakdown = metrics.marks.breakdown_ms()
        for key, _label in BREAKDOWN_ROWS:
            self.breakdown[key].setText(format_ms(breakdown.get(key)))
        under = str(metrics.underrun_episodes)
        if metrics.underrun_episodes:
            under += f" ({metrics.underrun_ms:.0f} ms silent)"
        self.underruns.setText(under)
        self.rtf.setText(DASH if metrics.stream_rtf is None else f"{metrics.stream_rtf:.2f}× real time")
        self.bytes.setText(format_bytes(metrics.bytes_received))
        if metrics.error:
            state = "error"
        elif metrics.stopped:
            state = "stopped"
        else:
            state = "done" if metrics.completed else "ended"
        self.state.setText(state)


@dataclass(frozen=True)
class Tuning:
    """The knobs as the next Speak will use them."""

    chunk_bytes: int | None  # None: hand bytes on as they arrive
    prebuffer_ms: float | None  # None: auto
    max_buffer_s: float
    latency: str | float
    volume: float  # 0..1
    blocksize: int = 0  # 0: PortAudio chooses
    device: str | None = None  # None: the system default output


def _buddy(text: str, widget: QWidget) -> QLabel:
    """A form label whose mnemonic focuses `widget` (QFormLayout sets buddies only for widget fields)."""
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def output_device_names() -> list[str]:
    """Names of the PortAudio devices that can play (stream.output.output_devices)."""
    try:
        return [d.name for d in output_devices()]
    except (OSError, OutputError) as exc:  # PortAudio missing or failing: only the default entry is offered
        log.info("cannot list audio devices: %s", exc)
        return []


class TuningPanel(QGroupBox):
    """Buffer and device knobs, presets and Reset; read by MainWindow when Speak starts (changes apply to
    the next Speak)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Tuning (next Speak)", parent)
        self.preset = QComboBox()
        self.preset.addItem("Custom", None)
        for name in TUNING_PRESETS:
            self.preset.addItem(name, name)
        self.preset.setToolTip("Low latency: start on the first audio. Balanced: adaptive prebuffer. "
                               "Robust: survive a slow or jittery network.")
        self.reset_button = QPushButton("R&eset")
        self.reset_button.setToolTip("Back to the defaults (Balanced, default device, full volume)")
        preset_row = QHBoxLayout()
        preset_row.addWidget(self.preset, 1)
        preset_row.addWidget(self.reset_button)

        self.chunk_bytes = QSpinBox()
        self.chunk_bytes.setRange(0, MAX_CHUNK_BYTES)
        self.chunk_bytes.setSingleStep(256)
        self.chunk_bytes.setSpecialValueText("as they arrive")
        self.chunk_bytes.setSuffix(" B")
        self.chunk_bytes.setToolTip("Hand network bytes to the decoder in chunks of this size. Larger chunks "
                                    "wait for more bytes before any audio: a latency knob.")

        self.prebuffer_auto = QCheckBox("auto")
        self.prebuffer_auto.setChecked(True)
        self.prebuffer_auto.setToolTip("Start as early as the measured delivery rate allows")
        self.prebuffer_ms = QSpinBox()
        self.prebuffer_ms.setRange(0, MAX_PREBUFFER_MS)
        self.prebuffer_ms.setSingleStep(50)
        self.prebuffer_ms.setValue(300)
        self.prebuffer_ms.setSuffix(" ms")
        self.prebuffer_ms.setEnabled(False)
        self.prebuffer_auto.toggled.connect(lambda auto: self.prebuffer_ms.setEnabled(not auto))
        prebuffer_row = QHBoxLayout()
        prebuffer_row.addWidget(self.prebuffer_auto)
        prebuffer_row.addWidget(self.prebuffer_ms, 1)

        self.max_buffer_s = QDoubleSpinBox()
        self.max_buffer_s.setRange(MIN_MAX_BUFFER_S, MAX_MAX_BUFFER_S)
        self.max_buffer_s.setDecimals(1)
        self.max_buffer_s.setValue(10.0)
        self.max_buffer_s.setSuffix(" s")
        self.max_buffer_s.setToolTip("Most audio held in memory; beyond it the network is not read")

        self.latency = QComboBox()
        self.latency.setEditable(True)
        self.latency.addItems(["low", "high"])
        self.latency.setToolTip("Device latency: low, high, or seconds (e.g. 0.05)")

        self.blocksize = QSpinBox()
        self.blocksize.setRange(0, MAX_BLOCKSIZE)
        self.blocksize.setSingleStep(128)
        self.blocksize.setSpecialValueText("automatic")
        self.blocksize.setSuffix(" frames")
        self.blocksize.setToolTip("Frames per audio callback; automatic gives the lowest latency")

        self.device = QComboBox()
        names = output_device_names()
        self._device_choices = device_choices(names, pulse_sinks() if names else [])
        for choice in self._device_choices:
            self.device.addItem(choice.label, choice.device)
            self.device.setItemData(self.device.count() - 1, choice.tooltip, Qt.ItemDataRole.ToolTipRole)
        self.device.setToolTip("Where the audio goes (each entry's tooltip gives its PortAudio name)")

        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(100)
        self.volume_label = QLabel("100 %")
        self.volume_label.setMinimumWidth(40)
        self.volume.valueChanged.connect(lambda v: self.volume_label.setText(f"{v} %"))
        volume_row = QHBoxLayout()
        volume_row.addWidget(self.volume, 1)
        volume_row.addWidget(self.volume_label)

        form = QFormLayout(self)
        form.addRow(_buddy("Pre&set", self.preset), preset_row)
        form.addRow("&Chunk size", self.chunk_bytes)
        form.addRow(_buddy("Pre&buffer", self.prebuffer_auto), prebuffer_row)
        form.addRow("Max bu&ffer", self.max_buffer_s)
        form.addRow("&Latency", self.latency)
        form.addRow("Bloc&k size", self.blocksize)
        form.addRow("Output &device", self.device)
        form.addRow(_buddy("Vol&ume", self.volume), volume_row)

        self._applying = False
        self.preset.activated.connect(lambda _i: self.apply_preset(self.preset.currentData()))
        self.reset_button.clicked.connect(self.reset)
        for sig in (self.chunk_bytes.valueChanged, self.prebuffer_auto.toggled, self.prebuffer_ms.valueChanged,
                    self.max_buffer_s.valueChanged, self.latency.currentTextChanged, self.blocksize.valueChanged):
            sig.connect(self._knob_changed)
        self._knob_changed()

    def set_prebuffer(self, ms: float | None) -> None:
        """None: auto; otherwise a fixed prebuffer in ms."""
        self.prebuffer_auto.setChecked(ms is None)
        if ms is not None:
            self.prebuffer_ms.setValue(int(round(ms)))

    def set_knobs(self, chunk_bytes: int | None = None, prebuffer_ms: float | None = None,
                  max_buffer_s: float = 10.0, latency: str | float = "low", blocksize: int = 0) -> None:
        self._applying = True
        try:
            self.chunk_bytes.setValue(chunk_bytes or 0)
            self.set_prebuffer(prebuffer_ms)
            self.max_buffer_s.setValue(max_buffer_s)
            self.latency.setCurrentText(str(latency))
            self.blocksize.setValue(blocksize)
        finally:
            self._applying = False
        self._knob_changed()

    def apply_preset(self, name: str | None) -> None:
        """Set the knobs to a named preset (Low latency / Balanced / Robust); None (Custom) leaves them."""
        if name is None:
            return
        self.set_knobs(**TUNING_PRESETS[name])

    def reset(self) -> None:
        self.apply_preset(DEFAULT_PRESET)
        self.device.setCurrentIndex(0)
        self.volume.setValue(100)

    def set_device(self, name: str | None) -> None:
        name = alias_of(name, self._device_choices)
        index = self.device.findData(name) if name else 0
        if index < 0:  # a saved device that is not plugged in now: keep it selectable, by name
            self.device.addItem(f"{name} (not found)", name)
            index = self.device.count() - 1
        self.device.setCurrentIndex(index)

    def _knob_values(self) -> dict:
        try:
            latency = parse_latency(self.latency.currentText().strip())
        except ValueError:
            latency = self.latency.currentText().strip()
        return {"chunk_bytes": self.chunk_bytes.value() or None,
                "prebuffer_ms": None if self.prebuffer_auto.isChecked() else float(self.prebuffer_ms.value()),
                "max_buffer_s": round(float(self.max_buffer_s.value()), 1), "latency": latency,
                "blocksize": self.blocksize.value()}

    def _knob_changed(self, *_args: object) -> None:
        """Show which preset the knobs match (or Custom): changing a knob by hand leaves the preset."""
        if self._applying:
            return
        knobs = self._knob_values()
        match = next((n for n, p in TUNING_PRESETS.items() if all(knobs[k] == p[k] for k in TUNING_FIELDS)), None)
        self.preset.setCurrentIndex(max(0, self.preset.findData(match)) if match else 0)

    def restore(self, s: Settings) -> None:
        """Show the knobs saved in `s`."""
        self.set_knobs(chunk_bytes=s.chunk_bytes, prebuffer_ms=s.prebuffer_ms, max_buffer_s=s.max_buffer_s,
                       latency=s.latency, blocksize=s.blocksize)
        self.set_device(s.device)
        self.volume.setValue(int(round(s.volume * 100)))

    def store_into(self, s: Settings) -> None:
        """Put the knobs into `s`; an invalid latency typed in keeps the last good one."""
        try:
            tuning = self.values()
        except ValueError:
            return
        s.latency, s.chunk_bytes, s.prebuffer_ms = tuning.latency, tuning.chunk_bytes, tuning.prebuffer_ms
        s.max_buffer_s, s.blocksize, s.device, s.volume = (tuning.max_buffer_s, tuning.blocksize, tuning.device,
                                                           tuning.volume)

    def values(self) -> Tuning:
        """The knobs; raises ValueError with a message for the user when one is invalid."""
        latency = parse_latency(self.latency.currentText().strip())
        chunk = self.chunk_bytes.value()
        return Tuning(
            chunk_bytes=chunk or None,
            prebuffer_ms=None if self.prebuffer_auto.isChecked() else float(self.prebuffer_ms.value()),
            max_buffer_s=float(self.max_buffer_s.value()),
            latency=latency,
            volume=self.volume.value() / 100.0,
            blocksize=self.blocksize.value(),
            device=self.device.currentData(),
        )


class NetworkPanel(QGroupBox):
    """Simulated network conditions for the built-in voices (BuiltinServer.shaping): make underruns happen
    on purpose. `changed` fires with the new Shaping; it applies from the next request."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Network simulator (built-in voices)", parent)
        self.first_byte_ms = QSpinBox()
        self.first_byte_ms.setRange(0, 30000)
        self.first_byte_ms.setSingleStep(50)
        self.first_byte_ms.setSuffix(" ms")
        self.first_byte_ms.setToolTip("The server waits this long before answering")
        self.throughput_x = QDoubleSpinBox()
        self.throughput_x.setRange(0.0, 100.0)
        self.throughput_x.setDecimals(2)
        self.throughput_x.setSingleStep(0.25)
        self.throughput_x.setSpecialValueText("unlimited")
        self.throughput_x.setSuffix(" × real time")
        self.throughput_x.setToolTip("Audio arrives this many times faster than it plays; below 1 it "
                                     "cannot keep up and playback stutters")
        self.jitter_ms = QSpinBox()
        self.jitter_ms.setRange(0, 5000)
        self.jitter_ms.setSingleStep(10)
        self.jitter_ms.setSuffix(" ms")
        self.jitter_ms.setToolTip("Each write waits up to this much longer, at random")
        self.note = QLabel("Applies to the built-in provider only.")
        self.note.setEnabled(False)
        self.note.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("First-byte &delay", self.first_byte_ms)
        form.addRow("&Throughput", self.throughput_x)
        form.addRow("&Jitter", self.jitter_ms)
        form.addRow(self.note)
        # Shown where Speak is (the window puts it in the status bar): a slowed-down network explains a late
        # first sound or a stutter that the Voice tab alone would leave unexplained.
        self.indicator = QLabel(SIMULATOR_ON)
        self.indicator.setObjectName("simulatorIndicator")
        self.indicator.setStyleSheet("color: #e65100; font-weight: bold;")
        for sig in (self.first_byte_ms.valueChanged, self.throughput_x.valueChanged, self.jitter_ms.valueChanged):
            sig.connect(lambda *_a: self.changed.emit(self.shaping()))
            sig.connect(self._update_indicator)
        self._update_indicator()

    def is_active(self) -> bool:
        """The simulator slows the next Speak down: some condition is set and the built-in voices are chosen."""
        return self.isEnabled() and self.shaping() != Shaping()

    def _update_indicator(self, *_args: object) -> None:
        active = self.is_active()
        self.indicator.setVisible(active)
        if active:
            self.indicator.setToolTip(f"{self.describe()}: the built-in voices are slowed down on purpose. "
                                      "Set them back to 0 / unlimited on the Playback tab.")

    def set_values(self, first_byte_ms: float, throughput_x: float | None, jitter_ms: float) -> None:
        self.first_byte_ms.setValue(int(round(first_byte_ms)))
        self.throughput_x.setValue(throughput_x or 0.0)
        self.jitter_ms.setValue(int(round(jitter_ms)))

    def restore(self, s: Settings) -> None:
        self.set_values(s.sim_first_byte_delay_ms, s.sim_throughput_x, s.sim_jitter_ms)

    def store_into(self, s: Settings) -> None:
        s.sim_first_byte_delay_ms = float(self.first_byte_ms.value())
        s.sim_throughput_x = self.throughput()
        s.sim_jitter_ms = float(self.jitter_ms.value())

    def set_builtin_chosen(self, chosen: bool) -> None:
        """Only the built-in voices can be slowed down: usable only while they are the provider."""
        self.setEnabled(chosen)
        self._update_indicator()
        self.note.setText("Applies to the built-in provider only." if chosen else
                          "Only the built-in provider can be slowed down: choose it on the Voice tab.")

    def describe(self) -> str:
        """What is simulated, e.g. 'first byte after 500 ms, 0.5× real time, jitter 20 ms'."""
        parts = []
        if self.first_byte_ms.value():
            parts.append(f"first byte after {self.first_byte_ms.value()} ms")
        if self.throughput() is not None:
            parts.append(f"{self.throughput():g}× real time")
        if self.jitter_ms.value():
            parts.append(f"jitter {self.jitter_ms.value()} ms")
        return ", ".join(parts) or "nothing"

    def throughput(self) -> float | None:
        v = round(self.throughput_x.value(), 2)
        return v if v > 0 else None

    def shaping(self) -> Shaping:
        return Shaping(first_byte_delay_s=self.first_byte_ms.value() / 1000.0, throughput_x=self.throughput(),
                       jitter_s=self.jitter_ms.value() / 1000.0)
