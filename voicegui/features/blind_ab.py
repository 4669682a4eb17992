"""Blind A/B: two voices fetched once, played under hidden names ("Voice 1", "Voice 2") on randomised sides,
switching at the same audio time, optionally at the same loudness, with a vote and a reveal.

`fetch_contender(side, request, label)` fetches one voice's whole body (untimed: it also warms the engine),
decodes it with the same decoder as a Speak to float32 mono at `RATE`, and measures its loudness
(features/loudness.py). `BlindTest(a, b, rng)` puts the two contenders behind "Voice 1" / "Voice 2" in a
random order (rng: random.SystemRandom by default; tests pass a seeded Random). `body(slot, from_s)` gives the
audio of a slot from `from_s` seconds on as raw s16le pcm at `RATE`, with the matching gain applied when
`matched` (gain limited by the peak: it never clips); the A/B panel plays it through the window's Player with
stream/replay_source.py, the same session path as any Speak, so a switch continues at the same audio time
instead of from 0 s. `vote(choice)` records the preference as a votes.Vote (blind unless the names were
revealed first) and reveals; `name(slot)` is "Voice 1" until then.

Threads: `fetch_contender` runs on the asyncio loop (network) and decodes there (a few seconds of audio:
milliseconds); a BlindTest is plain data used on the loop thread. Qt-free.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np

from voicegui.decode.errors import DecodeError
from voicegui.features.loudness import Loudness, apply_gain, decode_whole, matching_gain_db, measure
from voicegui.features.votes import Vote
from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, fetch_speech

RATE = 24000  # both contenders are decoded (and resampled if need be) to this rate
SLOTS = ("1", "2")
MAX_BODY_BYTES = 64 * 1024 * 1024  # a blind test keeps both bodies' audio in memory


class BlindTestError(Exception):
    """A contender could not be fetched or decoded; str() is a sentence for the user."""


@dataclass(frozen=True)
class Contender:
    """One voice of the test: what the user chose (side, label) and its decoded audio."""

    side: str  # "A" or "B" as set on the panel
    label: str  # "alloy / mp3": what the reveal and the votes show
    samples: np.ndarray  # float32 mono at RATE
    loudness: Loudness
    gain_db: float  # what brings it to the matching target without clipping
    first_byte_ms: float | None  # the untimed fetch's time to first byte (cold: may include engine loading)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / RATE


async def fetch_contender(side: str, request: SpeechRequest, label: str) -> Contender:
    """Fetch and decode one voice's whole body; BlindTestError with the reason when that fails."""
    body = bytearray()
    marks = FetchMarks()

    async def keep(chunk: bytes) -> None:
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise BlindTestError(f"{label}: the answer is over {MAX_BODY_BYTES >> 20} MiB; use a shorter text "
                                 "for the blind test")

    started = time.monotonic()
    try:
        await fetch_speech(request, marks, keep)
    except FetchError as exc:
        raise BlindTestError(f"{label}: {exc}") from exc
    try:
        samples = decode_whole(bytes(body), request.response_format, marks.response_headers, RATE)
    except DecodeError as exc:
        raise BlindTestError(f"{label}: {exc}") from exc
    if not len(samples):
        raise BlindTestError(f"{label}: the server sent no audio for this text")
    loudness = measure(samples, RATE)
    first = None if marks.first_byte is None else (marks.first_byte - started) * 1000.0
    return Contender(side, label, samples, loudness, matching_gain_db(loudness), first)


class BlindTest:
    """Two contenders behind hidden, randomly assigned names. Loop thread only."""

    def __init__(self, a: Contender, b: Contender, rng: random.Random | None = None, matched: bool = True,
                 text: str = "") -> None:
        order = [a, b]
        (rng or random.SystemRandom()).shuffle(order)
        self.slots = dict(zip(SLOTS, order, strict=True))
        self.matched = matched
        self.text = text
        self.revealed = False
        self.votes: list[Vote] = []

    def contender(self, slot: str) -> Contender:
        return self.slots[slot]

    def name(self, slot: str) -> str:
        """"Voice 1" while blind; "Voice 1: alloy / pcm" once revealed."""
        hidden = f"Voice {slot}"
        return f"{hidden}: {self.slots[slot].label}" if self.revealed else hidden

    def gain_db(self, slot: str) -> float:
        return self.slots[slot].gain_db if self.matched else 0.0

    def start_at(self, slot: str, position_s: float) -> float:
        """Where `slot` starts when switched to at `position_s`: the same time, or 0 past its end."""
        return position_s if 0.0 <= position_s < self.slots[slot].duration_s else 0.0

    def body(self, slot: str, from_s: float = 0.0) -> bytes:
        """`slot`'s audio from `from_s` on, gained if matched, as raw s16le mono pcm at RATE."""
        c = self.slots[slot]
        start = min(max(0, int(round(from_s * RATE))), len(c.samples))
        audio = c.samples[start:]
        if self.matched:
            audio = apply_gain(audio, c.gain_db)
        return (np.clip(audio, -1.0, 32767 / 32768) * 32768.0).round().astype("<i2").tobytes()

    def vote(self, choice: str) -> Vote:
        """Record the listener's choice ("1", "2" or "same") and reveal the names."""
        vote = Vote(first=self.slots["1"].label, second=self.slots["2"].label, choice=choice,
                    blind=not self.revealed, matched=self.matched, text=self.text)
        self.votes.append(vote)
        self.revealed = True
        return vote

    def reveal(self) -> None:
        self.revealed = True
