"""Shaping: simulated network and server conditions for the built-in speech server.

Tests and benchmarks set `app["shaping"]` (or `ServerThread.shaping`) to a `Shaping`; the server reads it
once per request, so it can be changed between requests. What each knob does to one response:

- first_byte_delay_s: wait this long before the response *headers* are sent (a server "thinking" before it
  answers, as real TTS servers do: they send headers with the first audio). Because it comes before the
  headers, a delay longer than the client's timeout is a timeout while waiting for the response; it also
  delays error responses (error_status) the same way.
- throughput_x: None sends bytes as fast as they are encoded. Otherwise the bytes that encode audio up to time
  T leave at start + T / throughput_x, so audio arrives at throughput_x times real time (start = when the
  headers were sent).
- jitter_s: per-write independent jitter: each write waits an extra random U[0, jitter_s] on top of its
  scheduled time. The extra wait is not carried over to later writes (relative to the schedule, not
  cumulative); a write still cannot overtake the one before it, so a late write holds back the ones behind it
  and they then arrive together.
- burst_s (with throughput_x): bursty delivery: whatever is due is held back and released together at the
  next multiple of burst_s after the headers, so audio arrives in lumps of ~burst_s x throughput_x seconds,
  up to burst_s late (a proxy or a server that flushes in batches).
- slow_start_s, slow_start_x (with throughput_x): the first slow_start_s seconds of audio go out at
  slow_start_x times real time, the rest at throughput_x (a server that is slow on its first sentence, or a
  connection still ramping up); the schedule is continuous where the two rates meet.
- cut_after_bytes: send exactly this many body bytes, then close the connection without ending the chunked
  body, so the client sees an incomplete response.
- error_status: answer with this HTTP status and an OpenAI-style JSON error instead of audio (after auth).
- write_bytes: the server writes the body in pieces of at most this many bytes.
- body_override: send these bytes as the body of a 200 response instead of encoded audio (an HTML error page,
  a JSON error, garbage, b"" for an empty body), with `body_content_type` as its Content-Type. Faults a real
  proxy or a misconfigured server produce; write_bytes, jitter and cut_after_bytes still apply.
- trickle_bytes_per_s: send the body at this many bytes per second (one write_bytes piece at a time),
  whatever audio it encodes: a stalled-but-alive server (e.g. 1 byte/s) for Stop and timeout tests.
- seed: seeds the jitter RNG (per request: seed + request id), so runs repeat.

Threads: a Shaping is plain data; the server only reads it on its loop. Replace it rather than mutating it
from another thread while a request starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Shaping:
    """Network conditions for the server's responses. See the module docstring for each knob."""

    first_byte_delay_s: float = 0.0
    throughput_x: float | None = None
    jitter_s: float = 0.0
    cut_after_bytes: int | None = None
    error_status: int | None = None
    write_bytes: int = 1024
    seed: int = 0
    body_override: bytes | None = None
    body_content_type: str = "application/octet-stream"
    trickle_bytes_per_s: float | None = None
    burst_s: float = 0.0
    slow_start_s: float = 0.0
    slow_start_x: float = 0.5

    def __post_init__(self) -> None:
        if self.first_byte_delay_s < 0:
            raise ValueError("first_byte_delay_s must be >= 0")
        if self.throughput_x is not None and not self.throughput_x > 0:
            raise ValueError("throughput_x must be > 0 (or None for as fast as possible)")
        if self.jitter_s < 0:
            raise ValueError("jitter_s must be >= 0")
        if self.cut_after_bytes is not None and self.cut_after_bytes < 0:
            raise ValueError("cut_after_bytes must be >= 0")
        if self.error_status is not None and not 400 <= self.error_status <= 599:
            raise ValueError("error_status must be an HTTP error status (400..599)")
        if self.write_bytes <= 0:
            raise ValueError("write_bytes must be positive")
        if self.trickle_bytes_per_s is not None and not self.trickle_bytes_per_s > 0:
            raise ValueError("trickle_bytes_per_s must be > 0 (or None)")
        if self.burst_s < 0:
            raise ValueError("burst_s must be >= 0")
        if self.slow_start_s < 0:
            raise ValueError("slow_start_s must be >= 0")
        if not self.slow_start_x > 0:
            raise ValueError("slow_start_x must be > 0")
        if (self.burst_s > 0 or self.slow_start_s > 0) and self.throughput_x is None:
            # Both reshape a schedule; "as fast as encoded" has none, so they would silently do nothing.
            raise ValueError("bursts and a slow start reshape a delivery rate, and none is set: set throughput_x "
                             "(voicegui serve --throughput-x)")

    def due_s(self, audio_t: float) -> float:
        """When the bytes that encode audio up to ``audio_t`` are due, in seconds after the headers, before
        jitter. Needs throughput_x."""
        if self.throughput_x is None:
            raise ValueError("due_s needs throughput_x")
        slow = min(audio_t, self.slow_start_s)
        due = slow / self.slow_start_x + (audio_t - slow) / self.throughput_x
        if self.burst_s > 0:
            due = math.ceil(due / self.burst_s - 1e-9) * self.burst_s
        return due
