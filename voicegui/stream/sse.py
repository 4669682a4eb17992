"""Speech as Server-Sent Events (`stream_format: "sse"`): the event framing and the speech events in it.

OpenAI's /v1/audio/speech with `stream_format: "sse"` (gpt-4o-mini-tts and newer; tts-1 refuses it), speaches
and vLLM-Omni answer `text/event-stream` whose events carry JSON:
    data: {"type": "speech.audio.delta", "audio": "<base64 of the requested response_format>"}
    data: {"type": "speech.audio.done", "usage": {"input_tokens": .., "output_tokens": .., "total_tokens": ..}}
and, from some servers, `{"type": "speech.audio.error", "error": {"message": ..}}`. Variants accepted:
`audio_data` for `audio` and `token_usage` for `usage` (both reported of compatible servers), and, as the
event-stream format allows them, the type only on the `event:` line and `data: [DONE]` as the end. Events of
other types (transcripts, progress) carry no audio: logged once per type and skipped.

`SseParser` does the framing of the WHATWG event-stream format on bytes as they arrive: lines may be split
across chunks anywhere (even between the CR and LF of a CRLF), end in LF, CRLF or CR; `:` comments, `event:`,
`id:`, `retry:` and multi-line `data:` are handled. A line or an event's data longer than `MAX_EVENT_BYTES` is
an error, so a hostile server cannot grow memory without bound; so is more than
`MAX_BYTES_WITHOUT_AUDIO_EVENTS` of events without audio, so it cannot keep a Speak busy forever either.

`SpeechEvents` turns those events into audio bytes: one delta event gives one bytes object (so the caller's
on_chunk, and the buffer plot's arrival marks, see one call per event); `end()` gives the audio of a last event
the end of the body left open, and `finish()` says whether the stream ended with its done event (else it was
cut) and returns the usage it reported. Audio that came before a problem in the same bytes is handed out first
and the problem raised on the next call, so what arrived still plays. Every problem is an
`SseError` whose `kind` matches `fetch.FetchError`'s kinds and whose text is one sentence; `fetch.py` turns it
into a FetchError (this module is below fetch.py so that fetch.py can import it without a cycle).

Threads: plain objects, used by one coroutine on the caller's asyncio loop (`fetch.fetch_speech`); no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from voicegui.limits import MAX_BYTES_WITHOUT_AUDIO
from voicegui.speech_sse import CONTENT_TYPE, DELTA, DONE, ERROR

log = logging.getLogger(__name__)

# One line, and one event's data, at most this long. A delta of one second of 24 kHz pcm is 64 KB of base64;
# 4 MiB leaves room for a server that sends a whole mp3 in one event and still bounds what a server can make
# us hold.
MAX_EVENT_BYTES = 4 * 1024 * 1024
# Event-stream bytes with no audio in them (keep-alive comments, events of other types, a delta's own bytes)
# before the stream is declared not playable, as the decoders do for a body: one whole delta event may take
# MAX_EVENT_BYTES, and no honest server sends a megabyte of anything else first.
MAX_BYTES_WITHOUT_AUDIO_EVENTS = MAX_EVENT_BYTES + MAX_BYTES_WITHOUT_AUDIO

DELTA_TYPES = (DELTA,)
DONE_TYPES = (DONE,)
ERROR_TYPES = (ERROR, "error")
AUDIO_FIELDS = ("audio", "audio_data")
USAGE_FIELDS = ("usage", "token_usage")

BOM = b"\xef\xbb\xbf"
FIX = "set the stream format to 'audio' (--stream-format audio) for this server"


class SseError(Exception):
    """The event stream cannot be used. `kind` is one of fetch.FetchError.KINDS ('protocol', 'server', 'cut');
    str(error) is one sentence."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class SseEvent:
    """One dispatched event: its `event:` name ('message' when none) and its data lines joined by '\\n'."""

    event: str
    data: str


def is_event_stream(headers: dict[str, str]) -> bool:
    """Whether a response's headers (names in lower case) say its body is an event stream."""
    return headers.get("content-type", "").split(";")[0].strip().lower() == CONTENT_TYPE


class SseParser:
    """Incremental text/event-stream framing. `feed(bytes)` returns the events completed by those bytes."""

    def __init__(self, where: str, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.where = where
        self.max_event_bytes = max_event_bytes
        self._buf = bytearray()
        self._scan = 0  # bytes of _buf already known to hold no line end, so a long line is scanned once
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._data_bytes = 0
        # A failure found after some events of a chunk: those events are returned first, the error comes on
        # the next call (so audio that arrived before a bad line still plays).
        self._failed: SseError | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events these bytes complete; raises SseError (on this call or, when events came before the
        problem in the same bytes, on the next) for a line that cannot be read or is too long."""
        self._raise_failure()
        events: list[SseEvent] = []
        try:
            self._feed(chunk, events)
        except SseError as exc:
            if not events:
                raise
            self._failed = exc
        return events

    def _raise_failure(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def _feed(self, chunk: bytes, events: list[SseEvent]) -> None:
        buf = self._buf
        buf += chunk
        if not self._started:
            if len(buf) < len(BOM) and BOM.startswith(bytes(buf)):
                return
            self._started = True
            if buf.startswith(BOM):  # the format allows one leading byte-order mark
                del buf[:len(BOM)]
        start, n = 0, len(buf)
        # bytes.find, not a loop over bytes: a 64 KB base64 line is scanned at C speed, and only once.
        lf, cr = buf.find(b"\n", self._scan), buf.find(b"\r", self._scan)
        scan = n
        while lf != -1 or cr != -1:
            if cr == -1 or lf != -1 and lf < cr:
                end, end_len = lf, 1
            elif cr + 1 == n:
                scan = cr  # a CR at the end: its LF may come with the next chunk
                break
            else:
                end, end_len = cr, 2 if buf[cr + 1] == 0x0A else 1
            self._line(bytes(buf[start:end]), events)
            start = end + end_len
            if lf != -1 and lf < start:
                lf = buf.find(b"\n", start)
            if cr != -1 and cr < start:
                cr = buf.find(b"\r", start)
        self._scan = max(scan, start) - start
        del buf[:start]
        if len(buf) > self.max_event_bytes:
            raise SseError("protocol", f"The server at {self.where} sent an event-stream line longer than "
                                       f"{_size(self.max_event_bytes)}; {FIX}.")

    def finish(self) -> list[SseEvent]:
        """The end of the stream: the last line counts if it ended (in a lone CR); an event whose data lines
        all arrived but whose closing blank line did not is still dispatched, as some servers omit it (the
        format says to drop it, but its JSON is whole, and a cut inside a line is still caught)."""
        self._raise_failure()
        events: list[SseEvent] = []
        if self._buf.endswith(b"\r"):
            self._line(bytes(self._buf[:-1]), events)
        elif self._buf:
            log.info("the event stream from %s ended inside a line (%d bytes dropped)", self.where, len(self._buf))
        self._buf.clear()
        self._scan = 0
        self._dispatch(events)
        return events

    def _line(self, raw: bytes, events: list[SseEvent]) -> None:
        if not raw:
            self._dispatch(events)
            return
        if raw.startswith(b":"):
            return  # a comment (keep-alive)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SseError("protocol", f"The server at {self.where} sent an event-stream line that is not "
                                       f"UTF-8 text ({exc.reason} at byte {exc.start}); {FIX}.") from exc
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_bytes += len(raw) + 1
            if self._data_bytes > self.max_event_bytes:
                raise SseError("protocol", f"The server at {self.where} sent an event with more than "
                                           f"{_size(self.max_event_bytes)} of data; {FIX}.")
            self._data.append(value)
        elif name == "event":
            self._event = value
        # id and retry only matter to a client that reconnects, which a speech request never does.

    def _dispatch(self, events: list[SseEvent]) -> None:
        if self._data:
            events.append(SseEvent(self._event or "message", "\n".join(self._data)))
        self._event = ""
        self._data = []
        self._data_bytes = 0


def _error_text(payload: dict[str, Any]) -> str | None:
    err = payload.get("error")
    if isinstance(err, dict):
        msg = err.get("message") or err.get("detail")
    else:
        msg = err
    if not msg:
        msg = payload.get("message") or payload.get("detail")
    if msg is None:
        return None
    text = " ".join(str(msg).split())  # one line, whatever the server put in it
    return text[:300] or None


def _sentence(text: str) -> str:
    return text if text.endswith((".", "!", "?")) else text + "."


class SpeechEvents:
    """The speech events of one response. `feed(bytes)` returns the audio (one bytes per delta event) those
    bytes completed; `end()` the audio of a last event left open by the end of the body; `finish()` returns the
    reported usage, or raises SseError when the done event never came.
    """

    def __init__(self, where: str, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.where = where
        self.parser = SseParser(where, max_event_bytes)
        self.events = 0  # speech events seen (deltas, done, errors)
        self.audio_bytes = 0
        self.done = False
        self.usage: dict[str, Any] | None = None
        self._unknown: set[str] = set()
        self._failed: SseError | None = None
        self._without_audio = 0  # bytes fed since the last audio came out

    def _raise_failure(self) -> None:
        if self._failed is not None:
            failed, self._failed = self._failed, None
            raise failed

    def feed(self, chunk: bytes) -> list[bytes]:
        """The audio these bytes complete, one bytes per delta event. A problem raises SseError; when audio
        came before it in the same bytes, that audio is returned first and the error raised on the next call."""
        self._raise_failure()
        audio = self._handle(self.parser.feed(chunk))
        self._without_audio = 0 if audio else self._without_audio + len(chunk)
        if self._without_audio > MAX_BYTES_WITHOUT_AUDIO_EVENTS and not self.done:
            raise SseError("protocol", f"The server at {self.where} sent {_size(self._without_audio)} of events "
                                       f"without any audio in them; {FIX}.")
        return audio

    def end(self) -> list[bytes]:
        """The body has ended: the audio of an event whose closing blank line never came (see
        SseParser.finish). Then call finish()."""
        self._raise_failure()
        return self._handle(self.parser.finish())

    def finish(self) -> dict[str, Any] | None:
        """After end(): the usage the done event reported (None when it had none); raises SseError when the
        stream did not end with a done event (kind 'cut') or a problem is still to be reported."""
        self._raise_failure()
        if not self.done:
            raise SseError("cut", f"The audio stream from {self.where} ended early after {self.audio_bytes} bytes "
                                  f"of audio in {self.events} events: no speech.audio.done event came.")
        return self.usage

    def _handle(self, events: list[SseEvent]) -> list[bytes]:
        audio: list[bytes] = []
        for ev in events:
            if self.done:
                log.info("event stream from %s: an event after speech.audio.done was ignored", self.where)
                continue
            try:
                piece = self._one(ev)
            except SseError as exc:
                if not audio:
                    raise
                self._failed = exc
                break
            if piece:
                audio.append(piece)
                self.audio_bytes += len(piece)
        return audio

    def _one(self, ev: SseEvent) -> bytes | None:
        if ev.data.strip() == "[DONE]":
            self.done = True
            return None
        try:
            payload = json.loads(ev.data)
        except ValueError as exc:
            raise SseError("protocol", f"The server at {self.where} sent an event whose data is not JSON "
                                       f"({_shown(ev.data)}); {FIX}.") from exc
        if not isinstance(payload, dict):
            raise SseError("protocol", f"The server at {self.where} sent an event whose data is not a JSON "
                                       f"object ({_shown(ev.data)}); {FIX}.")
        kind = payload.get("type")
        if not isinstance(kind, str):
            kind = ev.event  # some servers name the type only on the event: line
        self.events += 1
        if kind in DELTA_TYPES:
            return self._audio(payload)
        if kind in DONE_TYPES:
            self.done = True
            for name in USAGE_FIELDS:
                if isinstance(payload.get(name), dict):
                    self.usage = payload[name]
                    break
            return None
        if kind in ERROR_TYPES:
            msg = _error_text(payload)
            said = f" The server said: {_sentence(msg)}" if msg else " It gave no reason."
            # After some audio it is a stream that ended early (the caller plays what came), as a cut is.
            raise SseError("cut" if self.audio_bytes else "server",
                           f"The server at {self.where} reported an error in the audio stream after "
                           f"{self.audio_bytes} bytes of audio.{said}")
        if kind not in self._unknown:
            # Newer servers add events (transcripts, word timings); they carry no audio for us.
            self._unknown.add(kind)
            log.info("event stream from %s: events of type %r ignored", self.where, kind)
        return None

    def _audio(self, payload: dict[str, Any]) -> bytes:
        for name in AUDIO_FIELDS:
            value = payload.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                break
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise SseError("protocol", f"The server at {self.where} sent audio that is not valid base64 in "
                                           f"event {self.events} ({exc}); {FIX}.") from exc
        raise SseError("protocol", f"The server at {self.where} sent a speech.audio.delta event without base64 "
                                   f"audio in {' or '.join(repr(f) for f in AUDIO_FIELDS)}; {FIX}.")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def _shown(text: str) -> str:
    """A short, one-line quote of what the server sent."""
    one_line = " ".join(text.split())
    return repr(one_line[:40] + ("..." if len(one_line) > 40 else ""))
