"""Side panels of the main window: the TTFA/metrics readout and the tuning knobs used by the next Speak.

Threads: GUI thread only. The metrics panel polls the current session on a slow (~4 Hz) QTimer: text does
not need to change faster than people read. It reads only plain attributes the core publishes (fetch marks,
the first-decoded time) and ``snapshot()``; once a session has finished it shows the session's immutable
SessionMetrics. The tuning panel is plain widgets; MainWindow reads ``TuningPanel.values()`` on Speak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from voicegui.core.metrics import SessionMetrics
from voicegui.core.output import parse_latency
from voicegui.core.session import SpeakSession

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


def format_ms(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f} ms"


def format_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.2f} MB"


def _ms_since(start: float, mark: float | None) -> float | None:
    return None if mark is None else (mark - start) * 1000.0


class TtfaPanel(QGroupBox):
    """One big number (click -> first sound, ms), its breakdown, and the stream's counters."""

    def __init__(self, source: Callable[[], SpeakSession | None], parent: QWidget | None = None) -> None:
        super().__init__("Time to first audio", parent)
        self._source = source
        self._shown_final: SpeakSession | None = None

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

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.breakdown: dict[str, QLabel] = {}
        for key, label in BREAKDOWN_ROWS:
            value = QLabel(DASH)
            value.setAlignment(Qt.AlignmentFlag.AlignRight)
            self.breakdown[key] = value
            form.addRow(label, value)
        self.underruns = QLabel(DASH)
        self.rtf = QLabel(DASH)
        self.bytes = QLabel(DASH)
        self.state = QLabel("idle")
        for name, value in (("Underruns", self.underruns), ("Stream speed", self.rtf),
                            ("Bytes received", self.bytes), ("State", self.state)):
            value.setAlignment(Qt.AlignmentFlag.AlignRight)
            form.addRow(name, value)

        layout = QVBoxLayout(self)
        layout.addWidget(self.big)
        layout.addWidget(self.caption)
        layout.addLayout(form)
        layout.addStretch(1)

        self.timer = QTimer(self)
        self.timer.setInterval(SLOW_PERIOD_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def ttfa_text(self) -> str:
        return self.big.text()

    def reset(self) -> None:
        self._shown_final = None
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
        """While a Speak runs: the marks reached so far; the big number waits for the measured value."""
        start = session.started
        marks = session.fetch_marks
        live = {"request_sent": _ms_since(start, marks.request_sent), "headers": _ms_since(start, marks.headers),
                "first_byte": _ms_since(start, marks.first_byte),
                "first_decoded": _ms_since(start, session.first_decoded)}
        for key, value in live.items():
            self.breakdown[key].setText(format_ms(value))
        snap = session.snapshot()
        self.big.setText("…" if snap.play_started_s is None else f"~{snap.play_started_s * 1000:.0f} ms")
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


class TuningPanel(QGroupBox):
    """Buffer and device knobs; read by MainWindow when Speak starts (changes apply to the next Speak)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Tuning (next Speak)", parent)
        self.chunk_bytes = QSpinBox()
        self.chunk_bytes.setRange(0, 1 << 20)
        self.chunk_bytes.setSingleStep(256)
        self.chunk_bytes.setSpecialValueText("as they arrive")
        self.chunk_bytes.setSuffix(" B")
        self.chunk_bytes.setToolTip("Hand network bytes to the decoder in chunks of this size. Larger chunks "
                                    "wait for more bytes before any audio: a latency knob.")

        self.prebuffer_auto = QCheckBox("auto")
        self.prebuffer_auto.setChecked(True)
        self.prebuffer_auto.setToolTip("Start as early as the measured delivery rate allows")
        self.prebuffer_ms = QSpinBox()
        self.prebuffer_ms.setRange(0, 60000)
        self.prebuffer_ms.setSingleStep(50)
        self.prebuffer_ms.setValue(300)
        self.prebuffer_ms.setSuffix(" ms")
        self.prebuffer_ms.setEnabled(False)
        self.prebuffer_auto.toggled.connect(lambda auto: self.prebuffer_ms.setEnabled(not auto))
        prebuffer_row = QHBoxLayout()
        prebuffer_row.addWidget(self.prebuffer_auto)
        prebuffer_row.addWidget(self.prebuffer_ms, 1)

        self.max_buffer_s = QDoubleSpinBox()
        self.max_buffer_s.setRange(0.1, 600.0)
        self.max_buffer_s.setDecimals(1)
        self.max_buffer_s.setValue(10.0)
        self.max_buffer_s.setSuffix(" s")
        self.max_buffer_s.setToolTip("Most audio held in memory; beyond it the network is not read")

        self.latency = QComboBox()
        self.latency.setEditable(True)
        self.latency.addItems(["low", "high"])
        self.latency.setToolTip("Device latency: low, high, or seconds (e.g. 0.05)")

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
        form.addRow("Chunk size", self.chunk_bytes)
        form.addRow("Prebuffer", prebuffer_row)
        form.addRow("Max buffer", self.max_buffer_s)
        form.addRow("Latency", self.latency)
        form.addRow("Volume", volume_row)

    def set_prebuffer(self, ms: float | None) -> None:
        """None: auto; otherwise a fixed prebuffer in ms."""
        self.prebuffer_auto.setChecked(ms is None)
        if ms is not None:
            self.prebuffer_ms.setValue(int(round(ms)))

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
        )
