"""Timings a server tells: POST /dev/captioned_speech (Kokoro-FastAPI's captioned speech, and the built-in
server's), turned into Timings (features/timings.py) of the client's own text.

Kokoro-FastAPI answers {audio: base64, audio_format, timestamps: [{word, start_time, end_time}]} with one
timestamp per word: those become 'server' word timings, their sentences spanning them. The built-in server adds
`timestamp_unit` and `sample_rate`, and the audio's length is then known (`Timings.audio_s`: the window drops
timings whose audio turns out not to be the audio played). With `timestamp_unit: "word"` each timestamp is a word
whose start the engine itself reported (espeak-ng's word events): 'engine' words, their sentences spanning them.
With `"sentence"` each timestamp is one sentence, synthesised on its own, so its bounds are exact ('engine'); the
words inside are aligned to that sentence's own audio by its pauses (timings.estimate, 'estimated', except a
one-word sentence, whose word is the sentence). pcm is asked for, so the audio needs no decoder.

Threads: `fetch_timings` is a coroutine for the caller's asyncio loop (the window's GUI loop, the CLI's); the
answer (JSON with the whole audio in base64, decoded and analysed for its pauses: tens of ms for a sentence,
more for a long text) is parsed on a worker thread, so the window's loop keeps drawing and reading the speech
meanwhile; the parsing is pure. Every failure is a CaptionedError with one sentence.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np

from voicegui.features.timings import Timing, Timings, estimate, sentences_from_words
from voicegui.tls_contexts import short_lived_client

ROUTE = "/dev/captioned_speech"
DEFAULT_RATE = 24000
MAX_STAMPS = 100_000
# The answer carries the audio as base64: 4096 characters of text are ~5 min of pcm, ~19 MB in base64.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class CaptionedError(Exception):
    """The server's timings could not be had; str() is one sentence."""


def route_url(base_url: str) -> str:
    """Kokoro-FastAPI serves the route beside /v1, not under it: http://h:8880/v1 -> http://h:8880/dev/..."""
    root = base_url.rstrip("/")
    if root.endswith("/v1"):
        root = root[:-3]
    return root + ROUTE


async def fetch_timings(base_url: str, api_key: str, model: str, voice: str, text: str, speed: float,
                        timeout_s: float = 60.0) -> Timings:
    """The server's timings of `text` (asked for as pcm); CaptionedError when it does not give them."""
    import ssl

    body = {"model": model, "input": text, "voice": voice, "response_format": "pcm", "speed": speed,
            "stream": False, "return_timestamps": True}
    try:
        client = await short_lived_client(base_url, timeout_s)
    except (ssl.SSLError, OSError) as exc:
        raise CaptionedError(f"The server's word timings could not be fetched: the certificates to check it "
                             f"against could not be loaded ({exc}).") from exc
    import httpx2  # imported by short_lived_client (on a worker): here only its exception classes are read

    try:
        # One deadline for the whole answer (httpx2's own timeouts are per step).
        async with asyncio.timeout(timeout_s), client, \
                client.stream("POST", route_url(base_url), json=body,
                              headers={"Authorization": f"Bearer {api_key}"}) as resp:
            if resp.status_code != 200:
                raise CaptionedError(f"The server does not give word timings ({ROUTE} answered HTTP "
                                     f"{resp.status_code}).")
            raw = bytearray()
            async for chunk in resp.aiter_bytes(1 << 16):
                raw += chunk
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise CaptionedError(f"The server's word timings are larger than "
                                         f"{MAX_RESPONSE_BYTES // 2**20} MiB; not read.")
    except (httpx2.HTTPError, TimeoutError) as exc:
        raise CaptionedError(f"The server's word timings could not be fetched: {exc or type(exc).__name__}.") \
            from exc
    return await asyncio.to_thread(_parse_answer, text, raw)  # no copy: nothing writes to `raw` any more


def _parse_answer(text: str, raw: bytearray) -> Timings:
    import json

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CaptionedError(f"The server's word timings are not JSON ({exc}).") from exc
    return parse_response(text, data)


def parse_response(text: str, data: Any) -> Timings:
    """Timings of `text` from a captioned speech response; CaptionedError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("timestamps"), list):
        raise CaptionedError("The server's captioned speech response has no timestamps list.")
    stamps = data["timestamps"]
    if len(stamps) > MAX_STAMPS:
        raise CaptionedError(f"The server sent over {MAX_STAMPS} timestamps.")
    parsed = [_stamp(s) for s in stamps]
    unit = data.get("timestamp_unit")
    if unit in ("sentence", "word"):
        rate = data.get("sample_rate", DEFAULT_RATE)
        if data.get("audio_format") != "pcm" or not isinstance(rate, int) or not 0 < rate <= 384_000:
            raise CaptionedError(f"The server's {unit} timestamps come without the pcm audio they time.")
        audio = _pcm(data.get("audio"))
        if unit == "word":
            return _from_words(text, parsed, "engine", len(audio) / rate)
        return _from_sentences(text, parsed, audio, rate)
    return _from_words(text, parsed)


def _stamp(item: Any) -> tuple[str, float, float]:
    try:
        word, start, end = item["word"], float(item["start_time"]), float(item["end_time"])
    except (TypeError, KeyError, ValueError) as exc:
        raise CaptionedError(f"A timestamp from the server is not {{word, start_time, end_time}}: {item!r:.60}") \
            from exc
    if not isinstance(word, str) or not (np.isfinite(start) and np.isfinite(end) and 0 <= start <= end):
        raise CaptionedError(f"A timestamp from the server is out of order or not text: {item!r:.60}")
    return word, start, end


def _pcm(audio: Any) -> np.ndarray:
    try:
        raw = base64.b64decode(audio, validate=True) if isinstance(audio, str) else None
    except (binascii.Error, ValueError):
        raw = None
    if raw is None:
        raise CaptionedError("The server's captioned audio is not base64.")
    return np.frombuffer(raw[:len(raw) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


def _locate(text: str, pieces: Sequence[str]) -> list[tuple[int, int] | None]:
    """Each piece's span in `text`, in order, by its first and last words (None where it is not found)."""
    out: list[tuple[int, int] | None] = []
    pos = 0
    for piece in pieces:
        words = piece.split()
        start = text.find(words[0], pos) if words else -1
        end = text.find(words[-1], max(start, 0)) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(None)
            continue
        out.append((start, end + len(words[-1])))
        pos = end + len(words[-1])
    return out


def _from_words(text: str, stamps: Sequence[tuple[str, float, float]], source: str = "server",
                audio_s: float | None = None) -> Timings:
    spans = _locate(text, [w for w, _, _ in stamps])
    words = tuple(Timing(s, e, span[0], span[1], text[span[0]:span[1]], source)
                  for (_, s, e), span in zip(stamps, spans, strict=True) if span is not None)
    if not words:
        raise CaptionedError("None of the server's timestamped words is in the text.")
    return Timings(text, words, sentences_from_words(text, words, source), audio_s=audio_s)


def _from_sentences(text: str, stamps: Sequence[tuple[str, float, float]], audio: np.ndarray,
                    rate: int) -> Timings:
    words: list[Timing] = []
    sentences: list[Timing] = []
    for (_, start, end), span in zip(stamps, _locate(text, [s for s, _, _ in stamps]), strict=True):
        if span is None:
            continue
        part = text[span[0]:span[1]]
        inner = estimate(part, audio[round(start * rate):round(end * rate)], rate).shifted(start, span[0], text)
        exact = len(inner.words) == 1
        words.extend(Timing(w.start_s, w.end_s, w.char_start, w.char_end, w.text, "engine" if exact else w.source)
                     for w in inner.words)
        sentences.append(Timing(start, end, span[0], span[1], part, "engine"))
    if not sentences:
        raise CaptionedError("None of the server's timestamped sentences is in the text.")
    return Timings(text, tuple(words), tuple(sentences), audio_s=len(audio) / rate)
