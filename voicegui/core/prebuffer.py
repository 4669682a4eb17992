"""The prebuffer policy: how much audio to hold before playback starts (and restarts after an underrun).

Threads: owned by the asyncio loop. The loop calls ``on_arrival`` for every decoded chunk and reads
``threshold_frames``; the result is published to the output's gate as a plain int, which the PortAudio
callback thread reads (an int read is atomic under the GIL).

"auto" starts as early as the measured delivery allows:
* delivery rate r = audio seconds received per wall second, the larger of: since the response headers (so the
  very first chunk already gives a rate: 128 ms of audio 64 ms after the headers is a 2x stream), and since the
  first arrival once that spans 0.3 s (so a slow first byte does not hold a fast stream back for long);
* jitter cover = the longest silence between arrivals seen so far (the buffer must ride through that);
* shortfall = if r < 1, the buffer must hold (1 - r) x the remaining audio, estimated from the text length;
* a jitter prior: until the stream has shown it runs well ahead of real time, assume gaps of up to
  ``jitter_prior_s`` may come that have not been seen yet; it fades out linearly as r goes from 1 to 1.5x,
  because a stream that fast refills the buffer faster than it drains;
* before any rate is known, ``prior_s``.
After every underrun the floor grows, so a stream that stutters once gets more headroom next time.
A fixed value in ms replaces all of that with that value.
"""

from __future__ import annotations

from dataclasses import dataclass

# Typical read-aloud pace; used only to estimate how much audio is still to come when the rate is below 1.
_CHARS_PER_SECOND = 15.0


@dataclass
class PrebufferPolicy:
    """Computes the prebuffer threshold in frames. ``fixed_ms`` None means auto."""

    sample_rate: int
    fixed_ms: float | None = None
    expected_audio_s: float | None = None
    floor_s: float = 0.030
    prior_s: float = 0.100
    jitter_factor: float = 1.5
    growth_s: float = 0.150
    jitter_prior_s: float = 0.150
    trusted_arrivals: int = 3
    trusted_window_s: float = 0.3

    def __post_init__(self) -> None:
        self._first_t: float | None = None
        self._first_audio_s = 0.0
        self._last_t: float | None = None
        self._audio_s = 0.0
        self._arrivals = 0
        self._max_gap_s = 0.0
        self._underruns = 0
        self._origin_t: float | None = None

    def on_headers(self, now: float) -> None:
        """The response headers arrived: the origin for the delivery rate."""
        if self._origin_t is None:
            self._origin_t = now

    @staticmethod
    def expected_duration(text: str, speed: float | None) -> float:
        return max(1.0, len(text) / _CHARS_PER_SECOND / (speed or 1.0))

    @property
    def rate_x(self) -> float | None:
        """Measured delivery rate in multiples of real time, or None before it can be measured."""
        if self._last_t is None or self._first_t is None:
            return None
        rates = []
        if self._origin_t is not None and self._last_t > self._origin_t:
            rates.append(self._audio_s / (self._last_t - self._origin_t))
        # Over a short window a burst (late packets arriving together) looks like a very fast stream: the
        # since-first-arrival rate is trusted only once it spans enough wall time to average jitter out.
        if self._arrivals >= self.trusted_arrivals and self._last_t - self._first_t >= self.trusted_window_s:
            rates.append((self._audio_s - self._first_audio_s) / (self._last_t - self._first_t))
        return max(rates) if rates else None

    def on_arrival(self, now: float, audio_s: float) -> None:
        """Record that ``audio_s`` seconds of decoded audio arrived at monotonic time ``now``."""
        if audio_s <= 0:
            return
        if self._first_t is None:
            self._first_t = now
            self._first_audio_s = audio_s
        elif self._last_t is not None:
            self._max_gap_s = max(self._max_gap_s, now - self._last_t)
        self._last_t = now
        self._audio_s += audio_s
        self._arrivals += 1

    def on_underrun(self) -> None:
        self._underruns += 1

    def threshold_s(self) -> float:
        if self.fixed_ms is not None:
            return self.fixed_ms / 1000.0
        grown = self._underruns * self.growth_s
        rate = self.rate_x
        if rate is None:
            return max(self.prior_s, self.floor_s) + grown
        unseen_jitter = self.jitter_prior_s * min(1.0, max(0.0, (1.5 - rate) / 0.5))
        cover = max(self.floor_s, self.jitter_factor * self._max_gap_s, unseen_jitter)
        shortfall = 0.0
        if rate < 1.0:
            expected = self.expected_audio_s or 0.0
            remaining = max(0.0, expected - self._audio_s)
            shortfall = (1.0 - rate) * remaining
        return cover + shortfall + grown

    def threshold_frames(self) -> int:
        return int(round(self.threshold_s() * self.sample_rate))
