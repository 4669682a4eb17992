"""The prebuffer policy: how much audio to hold before playback starts (and restarts after an underrun).

Threads: owned by the asyncio loop. The loop calls ``on_headers`` once, ``on_codec_delay`` once before the
first arrival, ``on_arrival`` for every decoded chunk, and reads ``threshold_frames``; the result is published
to the output's gate as a plain int, which the PortAudio callback thread reads (an int read is atomic under
the GIL).

"auto" starts as early as the measured delivery allows. What it measures:
* delivery rate r = audio seconds received per wall second, the larger of
  - the rate since the response headers: it is never fooled by bursts (a real-time stream cannot be ahead of
    the headers), but it is biased low by whatever came before the first audio (an ID3 tag and an encoder
    delay for mp3, a whole 96 ms frame for flac), and
  - the least-squares slope of cumulative audio against arrival time, from the first arrival on: unbiased by
    that initial offset. It is used from the third arrival on (from the second when the stream is already
    ahead of real time since the headers, which a real-time stream with jitter never is);
* a *sure* rate for deciding that the stream runs well ahead of real time: the smaller of the rate since the
  headers and the rate since the first arrival without that arrival's own audio (over at least
  ``min_window_s``). The first arrival can carry far more audio than its time (a compressed stream's header
  plus many frames, or a backlog read at once when the loop noticed the headers late), and a late packet
  with the queued ones behind it looks like a very fast stream to any short window; a real-time stream fools
  both rates only with a backlog and a late first arrival together;
* lateness: for each arrival, (wall time since the headers) - (audio received before it), i.e. how far
  behind real time its first sample came; chunks within ``group_s`` of an arrival's first came with it (the
  rest of a burst, the frames of one read) and count as that arrival. Playing from now on at 1x never runs
  dry as long as every future chunk is at most as late as the time elapsed since the headers; the spread
  between the least and most late chunk is the jitter, and a constant offset (encoder delay, one frame) drops
  out.
The rates count the stream time a decoder dropped at the start (mp3's encoder delay, ``on_codec_delay``) as
delivered; the lateness does not: it is of the audio that plays, whose first sample comes that much after the
stream's start (so the first arrival is as late as the ones after it, not the delay earlier).

What it holds (``threshold_s``):
* near real time (sure rate <= ``fade_lo``): enough for a chunk as late as the latest seen, or
  ``jitter_prior_s`` (120 ms) later than the earliest one (jitter not seen yet), plus ``margin_s``; asked
  with the current time (the session's monitor asks every 10 ms while the output waits), this falls as time
  passes without an arrival, so a stream of big writes starts between them (``_late_now``);
  this fades out as the sure rate goes to ``fade_hi``, because a stream that fast refills the buffer
  faster than it drains;
* always: ``jitter_factor`` x the longest silence between arrivals seen so far beyond what the arrival before it
  brought (a 1 KB mp3 write is ~170 ms of audio, so at 1x its writes are 170-270 ms apart with 100 ms of jitter
  and leave at most ~100 ms uncovered; counting the whole 270 ms held such streams 400 ms), and, for a fast stream,
  ``jitter_factor`` x how much later the first audio came than the rate predicts (at least ``floor_s``);
* if r < 1: the shortfall (1 - r) / r x (R + a) for the remaining audio R (estimated from the text length)
  and the most audio one arrival brings, a: R comes in over R / r seconds while it plays in R, and the last
  arrival's audio is needed as it begins to play but comes only whole, a / r after the one before, where the
  near-real-time hold above covers a of that. A dead band just below 1x
  keeps a noisy estimate of a real-time stream from adding seconds; r is then the slope plus ``slope_k`` of
  its standard errors where that is more (``_optimistic_rate``): the first tenths of a second of a
  real-time stream with 100 ms of jitter have slopes of 0.8x, which held its start for hundreds of ms,
  whereas a steady slow stream's slope is slow within its error too;
* before any rate is known, ``prior_s``.
After every underrun the threshold grows by ``growth_s``, so a stream that stutters once gets more headroom.
A fixed value in ms replaces all of that with that value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Typical read-aloud pace; used only to estimate how much audio is still to come when the rate is below 1.
_CHARS_PER_SECOND = 15.0
# A stream measured slower than this is held as this slow: the hold is then many times the text anyway.
_SLOWEST_RATE = 0.05


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
    jitter_prior_s: float = 0.120
    margin_s: float = 0.030
    fade_lo: float = 1.1
    fade_hi: float = 1.8
    slope_k: float = 2.0
    dead_band: float = 0.15
    trusted_arrivals: int = 3
    min_window_s: float = 0.04
    group_s: float = 0.02  # chunks this close to the first of an arrival came with it (lateness: see on_arrival)

    def __post_init__(self) -> None:
        self._origin_t: float | None = None
        self._first_t: float | None = None
        self._first_audio_s = 0.0
        self._last_t: float | None = None
        self._audio_s = 0.0
        self._arrivals = 0
        self._max_uncovered_s = 0.0  # the longest wait for an arrival beyond the audio the one before it brought
        self._underruns = 0
        # running sums for the least-squares fit of cumulative audio y against time t since the first arrival
        self._st = self._sy = self._stt = self._sty = self._syy = 0.0
        self._late_min: float | None = None
        self._late_max: float | None = None
        self._group_t: float | None = None  # when the first chunk of the latest arrival came
        self._group_audio_s = 0.0  # the audio of the latest arrival (all its chunks), as it plays
        self._largest_arrival_s = 0.0  # the most audio one arrival has brought (a frame, a write), as it plays
        self._codec_delay_s = 0.0  # stream time the decoder dropped before the first audio (on_codec_delay)
        self._credit_s = 0.0  # how much of it counts as delivered with the first arrival

    def on_headers(self, now: float) -> None:
        """The response headers arrived: the origin for the delivery rate and the lateness."""
        if self._origin_t is None:
            self._origin_t = now

    @staticmethod
    def expected_duration(text: str, speed: float | None) -> float:
        return max(1.0, len(text) / _CHARS_PER_SECOND / (speed or 1.0))

    def on_codec_delay(self, seconds: float) -> None:
        """Before the first arrival: the decoder dropped ``seconds`` of the stream's start, an encoder's delay
        (mp3's, with the decoder's own 529 samples: ~46 ms at 24 kHz, so its first output can be 47 samples).
        That time was delivered, only not as audio: it counts with the first arrival for the rates. Left out,
        the rate since the headers of a 2x mp3 stream stayed near 1x for a tenth of a second, so it was held as
        a real-time one (~96 ms after its first byte in the simulation, 60 with it). A real-time stream is not
        made to look fast by it: an encoder emits its first frames only after more input than the delay they
        carry (the built-in server's LAME: ~100 ms of input for the first two frames, 48 ms with the delay).
        It counts for no more than the wait from the headers to the first audio (see on_arrival). The lateness
        is of the audio as it plays (``_decoded_audio_s``): the hold is audio to play."""
        if self._first_t is None:
            self._codec_delay_s = max(0.0, seconds)

    @property
    def codec_delay_s(self) -> float:
        return self._codec_delay_s

    def _decoded_audio_s(self) -> float:
        """The audio decoded so far, without the codec delay credited to the first arrival (only the rates
        count that). At the first arrival, before its audio is added, this is minus the credit: in stream time
        its first sample comes after the dropped delay, so its lateness is counted as the later arrivals' are
        (they come that much later after the audio decoded before them). Counted from 0 instead, the first
        arrival looked the delay (mp3: 46 ms) earlier than the rest, and the unseen-jitter prior, added to the
        least lateness, covered that much less jitter."""
        return self._audio_s - self._credit_s

    def on_arrival(self, now: float, audio_s: float) -> None:
        """Record that ``audio_s`` seconds of decoded audio arrived at monotonic time ``now``."""
        if audio_s <= 0:
            return
        # The first chunk of what arrived at once starts an arrival: the ones right behind it (the rest of a burst,
        # the frames of one read) came with it.
        new_arrival = self._group_t is None or now - self._group_t > self.group_s
        playing_s = audio_s
        if self._first_t is None:
            # No more than the wait since the headers: a server that sends its headers with the first audio
            # spent the encoder's time before them, and its first write then already reads as a backlog.
            waited = 0.0 if self._origin_t is None else max(0.0, now - self._origin_t)
            self._credit_s = min(self._codec_delay_s, waited)
            audio_s += self._credit_s
            self._first_t = now
            self._first_audio_s = audio_s
        elif new_arrival and self._last_t is not None:
            # Played at 1x, the arrival before covered its own audio's length of this wait.
            self._max_uncovered_s = max(self._max_uncovered_s, now - self._last_t - self._group_audio_s)
        self._last_t = now
        if new_arrival:
            self._group_t = now
            self._group_audio_s = 0.0
            if self._origin_t is not None:
                # Its chunks after the first are "early" only because they came with it, and would hide the
                # prior's room: the first one's lateness is the arrival's.
                late = now - self._origin_t - self._decoded_audio_s()
                self._late_min = late if self._late_min is None else min(self._late_min, late)
                self._late_max = late if self._late_max is None else max(self._late_max, late)
        self._group_audio_s += playing_s
        self._largest_arrival_s = max(self._largest_arrival_s, self._group_audio_s)
        self._audio_s += audio_s
        self._arrivals += 1
        t, y = now - self._first_t, self._audio_s
        self._st += t
        self._sy += y
        self._stt += t * t
        self._sty += t * y
        self._syy += y * y

    def on_underrun(self) -> None:
        self._underruns += 1

    def _header_rate(self) -> float | None:
        if self._origin_t is None or self._last_t is None or self._last_t <= self._origin_t:
            return None
        return self._audio_s / (self._last_t - self._origin_t)

    def _slope(self) -> tuple[float, float] | None:
        """Least-squares slope of cumulative audio vs arrival time and its standard error, once usable."""
        n = self._arrivals
        if n < 2:
            return None
        sxx = self._stt - self._st * self._st / n
        if sxx <= 1e-12:
            return None  # all arrivals at once: no time base yet
        sxy = self._sty - self._st * self._sy / n
        slope = sxy / sxx
        if n < self.trusted_arrivals:
            # Two points give a slope but no error estimate. Trust them only when the stream is already ahead
            # of real time since the headers, which a real-time stream (however jittery) cannot be.
            return (slope, 0.0) if (self._header_rate() or 0.0) > 1.0 else None
        syy = self._syy - self._sy * self._sy / n
        sse = max(0.0, syy - slope * sxy)
        return slope, math.sqrt(sse / (n - 2) / sxx)

    @property
    def rate_x(self) -> float | None:
        """Measured delivery rate in multiples of real time, or None before it can be measured."""
        rates = [r for r in (self._header_rate(),) if r is not None]
        fit = self._slope()
        if fit is not None:
            rates.append(fit[0])
        return max(rates) if rates else None

    def _optimistic_rate(self, rate: float) -> float:
        """`rate`, or the slope plus ``slope_k`` standard errors if that is more: a stream is held as slower
        than real time only when even that says so (a real-time stream with 100 ms of jitter on 20 ms writes
        has slopes of 0.8x in its first tenths of a second).

        Not widened for few arrivals (Student's t): widened from five arrivals on, the modelled 1x streams
        with 0-100 ms of per-write jitter started sooner in their worst runs (pcm 183 ms after the first byte
        instead of 301), but in the bench a steady 0.8x mp3 stream then looked fast enough, started 225 ms
        after its first byte and ran dry in both runs (waits ~1.7 s and plays cleanly without; why its fit's
        error was that large was not pinned down)."""
        fit = self._slope()
        return rate if fit is None else max(rate, fit[0] + self.slope_k * fit[1])

    def _window_rate(self) -> float | None:
        """Audio per wall second from the first arrival on, without the first arrival's own audio.

        The first arrival can carry far more audio than the time it took: a compressed stream's first write holds
        the container header and many frames, and whatever queued up while the client was not reading (the
        headers noticed late by a busy loop) comes in one read. Counting it would make a real-time stream look
        fast; from the first arrival on, only what the delivery keeps up counts.
        """
        if self._first_t is None or self._last_t is None or self._last_t - self._first_t < self.min_window_s:
            return None  # a late packet and the queued ones right behind it: no time base yet
        return (self._audio_s - self._first_audio_s) / (self._last_t - self._first_t)

    def _sure_rate(self) -> float | None:
        """A rate the stream is very likely at least as fast as.

        The smaller of the rate since the headers and the rate since the first arrival (``_window_rate``): a
        real-time stream, however jittery, is never ahead of real time since the headers unless its first
        arrival brought a backlog, and the window rate leaves that first arrival out. Each alone is fooled (the
        header rate by a first burst, the window rate by a late first arrival followed by the queued ones); a
        real-time stream fools both only with a backlog *and* a late first arrival.
        """
        header, window = self._header_rate(), self._window_rate()
        if header is None:
            return None
        if header <= 1.0 or window is None:
            return min(header, 1.0)  # not evidently fast yet
        return min(header, window)

    def _first_wait_s(self, rate: float) -> float:
        """How much later than ``rate`` predicts the first audio came after the headers."""
        if self._origin_t is None or self._first_t is None:
            return 0.0
        return max(0.0, self._first_t - self._origin_t - self._first_audio_s / max(1.0, rate))

    def threshold_s(self, now: float | None = None) -> float:
        """The audio to hold before playing, in seconds. `now` (monotonic): the time the output asks at, for a
        threshold that keeps falling between arrivals (see ``_late_now``); None: as of the last arrival."""
        if self.fixed_ms is not None:
            return self.fixed_ms / 1000.0
        grown = self._underruns * self.growth_s
        rate = self.rate_x
        sure = self._sure_rate()
        if rate is None or sure is None or self._last_t is None:
            return max(self.prior_s, self.floor_s) + grown
        fade = min(1.0, max(0.0, (self.fade_hi - sure) / (self.fade_hi - self.fade_lo)))
        if self._late_min is not None and self._late_max is not None and self._origin_t is not None:
            worst = max(self._late_max, self._late_min + self.jitter_prior_s)
            near_real_time = worst + self.margin_s - self._late_now(worst, now)
        else:
            near_real_time = self.jitter_prior_s + self.margin_s
        cover = max(
            self.floor_s,
            self.jitter_factor * self._max_uncovered_s,
            (1.0 - fade) * self.jitter_factor * self._first_wait_s(rate),
            fade * near_real_time,
        )
        shortfall = 0.0
        rate = self._optimistic_rate(rate)
        if rate < 1.0:
            remaining = max(0.0, (self.expected_audio_s or 0.0) - self._audio_s)
            half = self.dead_band / 2
            ramp = min(1.0, max(0.0, (1.0 - rate - half) / half))
            # (1 - r) x R alone, which this was, left a steady 0.7x or 0.8x stream dry in every modelled run;
            # without the a, a 0.8x flac stream (96 ms frames) ran dry at its very end in 4 of 5 bench runs
            shortfall = ramp * (1.0 - rate) / max(rate, _SLOWEST_RATE) * (remaining + self._largest_arrival_s)
        return cover + shortfall + grown

    def _late_now(self, worst: float, now: float | None) -> float:
        """How late the next chunk is already: (now - headers) - audio received.

        Playing from `now` with B seconds buffered, the next chunk's first sample is due at now + B; it arrives in
        time if its lateness is at most late_now + B. So the hold needed is worst + margin - late_now, and it falls
        as time passes without an arrival: a stream of big writes (a 1 KB mp3 or opus write is ~170 ms of audio)
        starts between its arrivals when enough time has passed, not at the next arrival. Once the next chunk is
        later than the worst lateness seen (a stall beyond the bound), the bound says nothing: the hold is the
        one of the last arrival, which waits for the next one."""
        assert self._origin_t is not None and self._last_t is not None
        at_last = self._last_t - self._origin_t - self._decoded_audio_s()
        if now is None or now <= self._last_t:
            return at_last
        late = now - self._origin_t - self._decoded_audio_s()
        return late if late <= worst else at_last

    def threshold_frames(self, now: float | None = None) -> int:
        return int(round(self.threshold_s(now) * self.sample_rate))
