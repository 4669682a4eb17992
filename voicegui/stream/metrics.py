"""What one Speak measured: the time-to-first-audio breakdown and the counters, as plain data.

Threads: a SessionMetrics is built by the asyncio loop from the session's marks and the output's counters;
once built it is immutable and may be handed to any thread (GUI, CLI --json).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _ms(start: float | None, mark: float | None) -> float | None:
    if start is None or mark is None:
        return None
    return round((mark - start) * 1000.0, 2)


@dataclass(frozen=True)
class TtfaMarks:
    """time.monotonic() marks of one Speak; None when the stage was never reached."""

    started: float
    request_sent: float | None = None
    headers: float | None = None
    first_byte: float | None = None
    first_decoded: float | None = None
    play_started: float | None = None
    first_sound: float | None = None
    device_latency_s: float | None = None

    def breakdown_ms(self) -> dict[str, float | None]:
        """Each mark in ms after the click; first_heard adds the device's reported output latency."""
        heard = None
        if self.first_sound is not None and self.device_latency_s is not None:
            heard = self.first_sound + self.device_latency_s
        return {
            "request_sent": _ms(self.started, self.request_sent),
            "headers": _ms(self.started, self.headers),
            "first_byte": _ms(self.started, self.first_byte),
            "first_decoded": _ms(self.started, self.first_decoded),
            "play_started": _ms(self.started, self.play_started),
            "first_sound": _ms(self.started, self.first_sound),
            "device_latency": None if self.device_latency_s is None else round(self.device_latency_s * 1000, 2),
            "first_heard": _ms(self.started, heard),
        }


@dataclass(frozen=True)
class SessionMetrics:
    marks: TtfaMarks
    requested_format: str
    detected_format: str | None = None
    format_warning: str | None = None
    sample_rate: int | None = None
    bytes_received: int = 0
    audio_received_s: float = 0.0
    audio_played_s: float = 0.0
    stream_rtf: float | None = None  # audio seconds delivered per wall second while receiving
    underrun_episodes: int = 0
    underrun_ms: float = 0.0
    underrun_times_ms: tuple[float, ...] = field(default_factory=tuple)
    # Callbacks PortAudio flagged output_underflow: the device itself ran dry (our callback came too late),
    # which our own ring-empty counting cannot see.
    device_underflows: int = 0
    # Raw pcm only (None otherwise): the rate it was played at and why: "override" (the user's), "header" (the
    # response said), "realtime" (the Realtime API's 24 kHz) or "assumed" (nothing said: OpenAI's 24 kHz).
    pcm_rate: int | None = None
    pcm_rate_source: str | None = None
    prebuffer_ms: float | None = None
    completed: bool = False
    stopped: bool = False
    truncated: bool = False
    error: str | None = None
    error_kind: str | None = None

    @property
    def ttfa_ms(self) -> float | None:
        return _ms(self.marks.started, self.marks.first_sound)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        data.pop("marks")
        data["ttfa_ms"] = self.ttfa_ms
        data["breakdown_ms"] = self.marks.breakdown_ms()
        data["underrun_times_ms"] = list(self.underrun_times_ms)
        return data
