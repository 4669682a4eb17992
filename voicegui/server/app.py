"""The built-in OpenAI-compatible speech server (aiohttp), meant for 127.0.0.1 only.

Routes:
- POST /v1/audio/speech   JSON {model, input, voice, response_format=mp3, speed=1, instructions?,
                          stream_format=audio} -> chunked audio in the requested format, encoded while the
                          engine synthesises; with stream_format "sse" the same audio as text/event-stream
                          events (speech_sse.py: one speech.audio.delta per encoder output, then
                          speech.audio.done with a usage; an engine failure mid-stream is a speech.audio.error
                          event instead of a cut body).
- POST /dev/captioned_speech  the same body (stream_format aside) -> JSON {audio: base64 of the whole body in
                          response_format, audio_format, sample_rate, timestamps: [{word, start_time,
                          end_time}], timestamp_unit}, shaped like Kokoro-FastAPI's non-streaming captioned
                          speech. timestamp_unit "word": the voice's engine says where each word starts
                          (espeak-ng's word events: an engine with `synthesize_words`, see WordTimer); else
                          "sentence": each timestamp is one sentence (text.split_sentences), synthesised on
                          its own, so its bounds are where the engine's audio for it starts and ends; a
                          sentence a stream of the same text synthesised lately is taken as it was streamed
                          (engines/recent_audio.py), not synthesised again.
- GET  /v1/models         {"object": "list", "data": [{"id", "object": "model", "owned_by"}]}
- GET  /v1/audio/voices   {"voices": [{"id", "name", "language", "engine"}]}
Errors are OpenAI-shaped: {"error": {"message", "type", "param", "code"}} with the matching status.

Every request, whatever its route, must name this server in its Host header (127.0.0.1, localhost or [::1]
with the port it listens on; else 421: DNS rebinding) and carry no Origin header but this server's own (else
403: a web page's cross-site request); see `_this_machine_only`. Then the bearer token, if the app has one.

Every speech request is logged in `app["records"]` (a RequestRecord each) for tests and benchmarks, and is
shaped by `app["shaping"]` (see shaping.py), read once when the request arrives.

Order of checks for a speech request: bearer token (401) -> the body, read within `read_timeout_s` (408),
at most MAX_BODY_BYTES (413), parsed as JSON (400: also for nesting deep enough to exhaust the parser's stack
and for numbers with more digits than Python converts) -> body validation (400/404: text that is not valid
Unicode or has nothing to speak is refused here, before an engine sees it; error messages quote at most a
short prefix of what the client sent) -> shaping's first-byte delay (before any header is sent) -> shaping's
error_status -> shaping's body_override (a 200 with those bytes instead of audio) -> streaming.

Slow clients: `server_options()` sets aiohttp's keepalive_timeout to `read_timeout_s`, which closes a
connection whose request head has not fully arrived by then (a slowloris trickling header bytes), and the
body read has the same bound. Other clients are served meanwhile: each connection is its own task.

Threads: everything here runs on the asyncio loop that serves the app (ServerThread's own loop, or the
main loop under `voicegui serve`). The engine's generator and the encoder are used only from that loop.
A client that goes away mid-stream is noticed either by aiohttp cancelling the handler (the runner is
created with handler_cancellation=True) or by the next write failing; both end the request quietly and
mark the record `client_disconnected`.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import itertools
import json
import logging
import random
import time
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from voicegui import speech_sse as sse
from voicegui.aiohttp_import import web
from voicegui.formats import FORMATS
from voicegui.limits import MAX_SPEED, MIN_SPEED
from voicegui.server.encode import StreamingEncoder
from voicegui.server.engines.base import Engine, EngineError
from voicegui.server.engines.recent_audio import reusing_recent_audio
from voicegui.server.shaping import Shaping
from voicegui.text import split_sentences

log = logging.getLogger(__name__)

# Request records kept for tests, benchmarks and metrics (~1 KB each).
MAX_RECORDS = 10_000

MAX_INPUT_CHARS = 4096

# A client has this long to send a request's headers (aiohttp's keepalive_timeout, which also bounds how long an
# idle keep-alive connection is kept; see server_options) and, separately, its body. Long enough for any honest
# client on loopback, short enough that a slowloris holding sockets open one byte at a time is cut off. Above
# aiohttp's client keep-alive (15 s) so a pooled connection is dropped by the client before the server closes it.
READ_TIMEOUT_S = 20.0

MAX_BODY_BYTES = 1024 * 1024

# How much of a client's value an error message quotes: enough to recognise it, never the whole payload.
_SHOWN_CHARS = 40

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    421: ("invalid_request_error", "invalid_host"),
    408: ("invalid_request_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}


@dataclass
class RequestRecord:
    """What happened to one POST /v1/audio/speech. Times are time.monotonic()."""

    id: int
    format: str | None = None
    received_at: float = 0.0
    status: int | None = None
    first_byte_sent_at: float | None = None  # right before the first body write
    bytes_sent: int = 0  # body bytes handed to the transport
    completed: bool = False  # the whole body, terminator included, was written
    client_disconnected: bool = False  # the client closed the connection before the end
    cut: bool = False  # shaping.cut_after_bytes ended the response on purpose
    ended_at: float | None = None
    error: str | None = None
    model: str | None = None
    voice: str | None = None
    input_chars: int = 0
    audio_s: float = 0.0  # audio encoded into the body so far


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   err_type: str | None = None) -> web.Response:
    """An OpenAI-style JSON error response."""
    default_type, default_code = _ERROR_TYPES.get(status, ("server_error" if status >= 500
                                                           else "invalid_request_error", None))
    body = {"error": {"message": message, "type": err_type or default_type, "param": param,
                      "code": code if code is not None else default_code}}
    return web.json_response(body, status=status)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.response = error_response(status, message, param, code)


class _ClientGone(Exception):
    """The client closed the connection while we were writing."""


def _check_token(request: web.Request, token: str | None) -> web.Response | None:
    if token is None:
        return None
    auth = request.headers.get("Authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not given:
        return error_response(401, "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
                              code="missing_api_key")
    # Constant-time compare: cheap, and the habit matters even on loopback.
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return error_response(401, "Incorrect API key provided.", code="invalid_api_key")
    return None


def _shown(value: Any) -> str:
    """`value` for an error message: short strings and small numbers quoted, anything else described.

    A hostile body can carry a megabyte string, a 4000-digit integer (whose str() Python 3.11 refuses past
    4300 digits) or a list nested hundreds deep (whose repr() can hit the recursion limit): none of that is
    echoed back."""
    if isinstance(value, str):
        return repr(value) if len(value) <= _SHOWN_CHARS else f"{value[:_SHOWN_CHARS]!r}... ({len(value)} characters)"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        if value.bit_length() <= 64:
            return repr(value)
        return f"an integer with about {value.bit_length() * 3 // 10} digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _is_speakable(text: str) -> bool:
    """True if `text` has a letter, a digit or a symbol ($, +, an emoji...) in it: something an engine says.

    Punctuation, spaces, control and format characters (zero-width space...) and lone combining marks
    alone come out as silence, which the engines trim away: the answer would be a 200 with no audio."""
    return any(unicodedata.category(c)[0] in "LNS" for c in text)


def _check_text(text: str, param: str) -> None:
    """Refuse text that cannot be encoded as UTF-8 (lone surrogates, which JSON's \\udXXX escapes allow):
    engines hand text to programs and libraries as UTF-8 and would fail half-way with a 500."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _BadRequest(400, f"Invalid '{param}': it contains a lone surrogate ({exc.object[exc.start]!a} at "
                               f"character {exc.start}), which is not valid Unicode text.", param,
                          "invalid_value") from exc


def _validate(body: Any, engine: Engine) -> dict[str, Any]:
    """Check a speech request body; return the normalised fields or raise _BadRequest."""
    if not isinstance(body, dict):
        raise _BadRequest(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if model not in engine.models():
        raise _BadRequest(404, f"The model {_shown(model)} does not exist or you do not have access to it.",
                          "model", "model_not_found")
    text = body.get("input")
    if not isinstance(text, str):
        raise _BadRequest(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if not text.strip():
        raise _BadRequest(400, "Invalid 'input': empty string. Expected a non-empty string.", "input",
                          "empty_string")
    if len(text) > MAX_INPUT_CHARS:
        raise _BadRequest(400, f"Invalid 'input': string too long. Expected a string with maximum length "
                               f"{MAX_INPUT_CHARS}, but got a string with length {len(text)} instead.",
                          "input", "string_above_max_length")
    _check_text(text, "input")
    if not _is_speakable(text):
        raise _BadRequest(400, "Invalid 'input': there is nothing to speak in it (only punctuation, spaces or "
                               "control characters).", "input", "nothing_to_speak")
    voice = body.get("voice")
    if isinstance(voice, dict):  # newer API shape: {"id": "..."}
        voice = voice.get("id")
    if not isinstance(voice, str) or not voice:
        raise _BadRequest(400, "Missing required parameter: 'voice'.", "voice", "missing_required_parameter")
    if voice not in {v.id for v in engine.voices()}:
        raise _BadRequest(404, f"The voice {_shown(voice)} does not exist for model {_shown(model)}.", "voice",
                          "voice_not_found")
    fmt = body.get("response_format", "mp3")
    if fmt is None:
        fmt = "mp3"
    if fmt not in FORMATS:
        raise _BadRequest(400, f"Invalid value for 'response_format': {_shown(fmt)}. Supported values are: "
                               f"{', '.join(repr(f) for f in FORMATS)}.", "response_format", "invalid_value")
    speed = body.get("speed", 1.0)
    if speed is None:
        speed = 1.0
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not MIN_SPEED <= speed <= MAX_SPEED:
        raise _BadRequest(400, f"Invalid value for 'speed': {_shown(speed)}. Expected a number between "
                               f"{MIN_SPEED} and {MAX_SPEED}.", "speed", "invalid_value")
    instructions = body.get("instructions")
    if instructions is not None and (not isinstance(instructions, str) or len(instructions) > MAX_INPUT_CHARS):
        raise _BadRequest(400, f"Invalid 'instructions': expected a string of at most {MAX_INPUT_CHARS} "
                               "characters.", "instructions", "invalid_value")
    if instructions is not None:
        _check_text(instructions, "instructions")
    stream_format = body.get("stream_format")
    if stream_format is None:
        stream_format = "audio"
    if stream_format not in sse.STREAM_FORMATS:
        raise _BadRequest(400, f"Invalid value for 'stream_format': {_shown(stream_format)}. Supported values are: "
                               f"{', '.join(repr(f) for f in sse.STREAM_FORMATS)}.", "stream_format", "invalid_value")
    return {"model": model, "input": text, "voice": voice, "format": fmt, "speed": float(speed),
            "instructions": instructions, "stream_format": stream_format}


class _Writer:
    """Writes one response body in shaped pieces: pacing, jitter, cut. Owned by one handler."""

    def __init__(self, request: web.Request, resp: web.StreamResponse, rec: RequestRecord, shaping: Shaping,
                 sample_rate: int) -> None:
        self.request = request
        self.resp = resp
        self.rec = rec
        self.shaping = shaping
        self.sample_rate = sample_rate
        self.rng = random.Random(shaping.seed * 1_000_003 + rec.id)
        self.start = time.monotonic()
        self.audio_t = 0.0  # audio time covered by everything sent so far
        self.cut_done = False

    async def send(self, data: bytes, audio_end_s: float) -> None:
        """Send `data`, which encodes audio up to `audio_end_s`, in write_bytes pieces on schedule."""
        if not data or self.cut_done:
            self.audio_t = max(self.audio_t, audio_end_s)
            return
        sh = self.shaping
        t0, t1 = self.audio_t, max(self.audio_t, audio_end_s)
        n = len(data)
        for off in range(0, n, sh.write_bytes):
            piece = data[off:off + sh.write_bytes]
            # The piece's audio end, interpolated over the bytes of this encoder output.
            piece_t = t0 + (t1 - t0) * (off + len(piece)) / n
            await self._wait_turn(piece_t)
            if sh.cut_after_bytes is not None:
                left = sh.cut_after_bytes - self.rec.bytes_sent
                if len(piece) >= left:
                    await self._write(piece[:left])
                    await self.cut()
                    return
            await self._write(piece)
            self.rec.audio_s = piece_t
        self.audio_t = t1

    async def _wait_turn(self, piece_t: float) -> None:
        sh = self.shaping
        extra = self.rng.uniform(0.0, sh.jitter_s) if sh.jitter_s > 0 else 0.0
        if sh.trickle_bytes_per_s is not None:
            # A byte rate, not an audio rate: the next piece leaves once the bytes sent so far "paid" for it.
            due = self.start + (self.rec.bytes_sent + 1) / sh.trickle_bytes_per_s + extra
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            return
        if sh.throughput_x is None:
            if extra > 0:
                await asyncio.sleep(extra)
            return
        # Jitter shifts this write only; the schedule itself stays on start + due_s (audio time / x, reshaped by
        # slow start and bursts).
        delay = self.start + sh.due_s(piece_t) + extra - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _write(self, piece: bytes) -> None:
        if not piece:
            return
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise _ClientGone()
        if self.rec.first_byte_sent_at is None:
            self.rec.first_byte_sent_at = time.monotonic()
        try:
            await self.resp.write(piece)
        except ConnectionError as exc:  # aiohttp's ClientConnectionResetError is one
            raise _ClientGone() from exc
        self.rec.bytes_sent += len(piece)

    async def cut(self) -> None:
        """End the connection now, without the chunked terminator, after the bytes written so far left."""
        self.cut_done = True
        self.rec.cut = True
        transport = self.request.transport
        if transport is not None and not transport.is_closing():
            # close() (not abort()) flushes what is buffered first, so the client does receive exactly
            # cut_after_bytes body bytes, then sees EOF in the middle of the chunked body. Later writes
            # (aiohttp's write_eof) fail on the closing transport and aiohttp drops them quietly.
            transport.close()


async def _speech(request: web.Request) -> web.StreamResponse:
    app = request.app
    engine: Engine = app["engine"]
    shaping: Shaping = app["shaping"] or Shaping()
    rec = RequestRecord(id=next(app["_ids"]), received_at=time.monotonic())
    records = app["records"]
    records.append(rec)
    if len(records) > MAX_RECORDS:
        # A server left running for days must not grow without bound; the newest half is plenty.
        del records[: len(records) - MAX_RECORDS // 2]
    try:
        return await _speech_inner(request, engine, shaping, rec)
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the connection is lost (handler_cancellation=True). After a
        # shaped cut that is our own doing, not the client's.
        if not rec.cut and not rec.completed:
            rec.client_disconnected = True
        raise
    finally:
        rec.ended_at = time.monotonic()


async def _speech_inner(request: web.Request, engine: Engine, shaping: Shaping,
                        rec: RequestRecord) -> web.StreamResponse:
    denied = _check_token(request, request.app["token"])
    if denied is not None:
        rec.status, rec.error = denied.status, "unauthorized"
        return denied
    try:
        body = _parse_json(await _read_body(request))
        req = _validate(body, engine)
    except _BadRequest as bad:
        rec.status, rec.error = bad.response.status, str(bad)
        return bad.response
    rec.format, rec.model, rec.voice, rec.input_chars = req["format"], req["model"], req["voice"], len(req["input"])

    if shaping.first_byte_delay_s > 0:
        # Before any header: the client waits for the response itself (its timeout applies).
        await asyncio.sleep(shaping.first_byte_delay_s)
    if shaping.error_status is not None:
        rec.status, rec.error = shaping.error_status, "shaped error"
        message = {429: "Rate limit reached for requests (simulated by shaping).",
                   }.get(shaping.error_status, f"The server had an error while processing your request "
                                               f"(simulated HTTP {shaping.error_status}).")
        return error_response(shaping.error_status, message)

    if shaping.body_override is not None:
        return await _send_override(request, shaping, rec)

    encoder = StreamingEncoder(req["format"], engine.sample_rate)
    gen = engine.synthesize(req["input"], req["voice"], req["speed"])
    events = req["stream_format"] == "sse"
    headers = {"Content-Type": sse.CONTENT_TYPE if events else encoder.content_type, "Cache-Control": "no-cache"}
    if req["format"] == "pcm":
        headers["X-Sample-Rate"] = str(engine.sample_rate)  # raw pcm carries no header: say what it is
    resp = web.StreamResponse(status=200, headers=headers)
    resp.enable_chunked_encoding()
    rec.status = 200
    writer: _Writer | None = None
    try:
        try:
            first = await anext(gen, None)
        except EngineError as exc:
            rec.status, rec.error = 500, str(exc)
            return error_response(500, f"The speech engine failed: {exc}")
        await resp.prepare(request)  # StreamResponse sends its headers right here
        writer = _Writer(request, resp, rec, shaping, engine.sample_rate)
        if shaping.cut_after_bytes == 0:
            await writer.cut()
            return resp
        sr = engine.sample_rate
        # As events, each encoder output is one delta (none for an empty one); shaping applies to the event bytes.
        wrap = _delta if events else bytes
        block = first
        while block is not None and not writer.cut_done:
            data = encoder.encode(block)
            await writer.send(wrap(data), encoder.samples_in / sr)
            block = await anext(gen, None)
        if writer.cut_done:
            return resp
        await writer.send(wrap(encoder.finish()), encoder.samples_in / sr)
        if events and not writer.cut_done:
            await writer.send(sse.done_event(_usage(req["input"], encoder.samples_in / sr)), writer.audio_t)
        if writer.cut_done:
            return resp
        try:
            await resp.write_eof()
        except ConnectionError as exc:
            raise _ClientGone() from exc
        rec.completed = True
        return resp
    except _ClientGone:
        rec.client_disconnected = True
        log.info("speech request %d: client disconnected after %d bytes", rec.id, rec.bytes_sent)
        return resp
    except EngineError as exc:
        # Mid-stream failure: audio can only end the body early; events can say why, as an error event.
        rec.error = str(exc)
        log.warning("speech request %d: engine failed mid-stream: %s", rec.id, exc)
        if writer is not None and events and not writer.cut_done:
            try:
                await writer.send(sse.error_event(f"The speech engine failed: {exc}", "engine_error"), writer.audio_t)
                if not writer.cut_done:
                    await resp.write_eof()
            except _ClientGone:
                rec.client_disconnected = True
        elif writer is not None:
            await writer.cut()
        return resp
    finally:
        await gen.aclose()
        encoder.close()


async def _captioned(request: web.Request) -> web.Response:
    """POST /dev/captioned_speech (see the module docstring). Not shaped: it is for timings, not for playing."""
    engine: Engine = request.app["engine"]
    denied = _check_token(request, request.app["token"])
    if denied is not None:
        return denied
    try:
        req = _validate(_parse_json(await _read_body(request)), engine)
    except _BadRequest as bad:
        return bad.response
    sr = engine.sample_rate
    encoder = StreamingEncoder(req["format"], sr)
    parts: list[bytes] = []
    try:
        timed = await _word_timed(engine, req)
        if timed is not None:
            if timed.samples.size:
                parts.append(encoder.encode(timed.samples))
            stamps = [{"word": w, "start_time": round(start, 4), "end_time": round(end, 4)}
                      for start, end, w in timed.words]
        else:
            with reusing_recent_audio():  # the sentences a stream of this text just synthesised, not again
                stamps = await _sentence_stamps(engine, req, encoder, parts)
        parts.append(encoder.finish())
    except EngineError as exc:
        return error_response(500, f"The speech engine failed: {exc}")
    finally:
        encoder.close()
    return web.json_response({"audio": base64.b64encode(b"".join(parts)).decode("ascii"),
                              "audio_format": req["format"], "sample_rate": sr, "timestamps": stamps,
                              "timestamp_unit": "sentence" if timed is None else "word"})


async def _sentence_stamps(engine: Engine, req: dict[str, Any], encoder: StreamingEncoder,
                           parts: list[bytes]) -> list[dict[str, Any]]:
    """Each sentence synthesised on its own, encoded into `parts`: one stamp per sentence, its audio's bounds."""
    sr = engine.sample_rate
    stamps: list[dict[str, Any]] = []
    samples = 0
    for sentence in split_sentences(req["input"], MAX_INPUT_CHARS):
        start = samples
        gen = engine.synthesize(sentence, req["voice"], req["speed"])
        try:
            async for block in gen:
                parts.append(encoder.encode(block))
                samples = encoder.samples_in
        finally:
            await gen.aclose()
        if samples > start:  # a sentence with nothing to say (punctuation only) has no audio and no stamp
            stamps.append({"word": sentence, "start_time": round(start / sr, 4), "end_time": round(samples / sr, 4)})
    return stamps


class WordTimed(Protocol):
    samples: np.ndarray  # the audio /v1/audio/speech streams for the same request, as one block
    words: tuple[tuple[float, float, str], ...]  # (start_s, end_s, word as written)


@runtime_checkable
class WordTimer(Protocol):
    """An engine that can say where each word starts (espeak.EspeakEngine); None: it cannot this time."""

    async def synthesize_words(self, text: str, voice: str, speed: float) -> WordTimed | None: ...


async def _word_timed(engine: Engine, req: dict[str, Any]) -> WordTimed | None:
    """The voice's engine's word-timed audio, or None when it has none (then sentences are timed instead)."""
    engine_for = getattr(engine, "engine_for", None)  # BuiltinEngine routes by voice
    voice_engine = engine_for(req["voice"]) if callable(engine_for) else engine
    if not isinstance(voice_engine, WordTimer):
        return None
    return await voice_engine.synthesize_words(req["input"], req["voice"], req["speed"])


def _delta(data: bytes) -> bytes:
    return sse.delta_event(data) if data else b""


def _usage(text: str, audio_s: float) -> dict[str, int]:
    """The done event's usage. This server has no tokenizer: it counts input characters as input tokens and
    one output token per 20 ms of audio, so the numbers are stable and grow with the work, nothing more."""
    out = round(audio_s * 50)
    return {"input_tokens": len(text), "output_tokens": out, "total_tokens": len(text) + out}


async def _read_body(request: web.Request) -> str:
    """The request body as text, read within the app's read timeout (a client trickling its body is cut off).

    Raises _BadRequest: 408 (too slow), 413 (over client_max_size), 400 (bad charset or encoding)."""
    timeout_s: float = request.app["read_timeout_s"]
    try:
        async with asyncio.timeout(timeout_s):
            data = await request.read()
    except TimeoutError as exc:
        raise _BadRequest(408, f"The request body did not arrive within {timeout_s:g} s.") from exc
    except web.HTTPRequestEntityTooLarge as exc:
        raise _BadRequest(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.") from exc
    charset = request.charset or "utf-8"
    try:
        return data.decode(charset)
    except LookupError as exc:
        raise _BadRequest(400, f"Unknown charset in the Content-Type header: {_shown(charset)}.") from exc
    except UnicodeDecodeError as exc:
        raise _BadRequest(400, f"The request body is not valid {charset} text (byte {exc.start}).") from exc


def _parse_json(text: str) -> Any:
    """json.loads with every way it can fail on hostile input turned into a 400 (_BadRequest)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _BadRequest(400, f"We could not parse the JSON body of your request ({exc}).") from exc
    except RecursionError as exc:
        # The C scanner recurses per nesting level: "[[[[..." a hundred thousand deep exhausts the stack.
        raise _BadRequest(400, "The JSON body is nested too deeply.") from exc
    except ValueError as exc:
        # Python 3.11 refuses to convert integers of more than 4300 digits (CVE-2020-10735).
        raise _BadRequest(400, "The JSON body contains a number with too many digits.") from exc


async def _send_override(request: web.Request, shaping: Shaping, rec: RequestRecord) -> web.StreamResponse:
    """Answer 200 with shaping.body_override instead of audio (HTML/JSON error pages, garbage, empty)."""
    body = shaping.body_override or b""
    resp = web.StreamResponse(status=200, headers={"Content-Type": shaping.body_content_type,
                                                   "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    rec.status = 200
    await resp.prepare(request)
    writer = _Writer(request, resp, rec, shaping, 1)
    try:
        await writer.send(body, 0.0)
        if writer.cut_done:
            return resp
        await resp.write_eof()
    except (_ClientGone, ConnectionError):
        rec.client_disconnected = True
        log.info("speech request %d: client disconnected after %d bytes", rec.id, rec.bytes_sent)
        return resp
    rec.completed = True
    return resp


async def _models(request: web.Request) -> web.Response:
    engine: Engine = request.app["engine"]
    denied = _check_token(request, request.app["token"])
    if denied is not None:
        return denied
    created = request.app["created"]
    return web.json_response({"object": "list", "data": [
        {"id": m, "object": "model", "created": created, "owned_by": f"voicegui-{engine.name}"}
        for m in engine.models()
    ]})


async def _voices(request: web.Request) -> web.Response:
    engine: Engine = request.app["engine"]
    denied = _check_token(request, request.app["token"])
    if denied is not None:
        return denied
    return web.json_response({"voices": [v.as_json() for v in engine.voices()]})


def _own_addresses(request: web.Request) -> set[str] | None:
    """The Host header values that name this server: its loopback names with the port the request came in
    on (and without it on port 80, the default). None if the connection is already gone."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not sockname:
        return None
    ip, port = str(sockname[0]), int(sockname[1])
    names = {"127.0.0.1", "localhost", "[::1]", f"[{ip}]" if ":" in ip else ip}
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return hosts


@web.middleware
async def _this_machine_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """Refuse requests that a web page made the browser send, before any route sees them.

    DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and then reads our answers as
    same-origin; its requests still say "Host: evil.example", so only our own loopback names pass. Cross-site
    requests: a page can POST to http://127.0.0.1:PORT without a CORS preflight (text/plain "simple"
    requests), and browsers label it with an Origin header; programs (the openai SDK, httpx, aiohttp, curl)
    send none, so any Origin but our own is refused. The bearer token is the third line of defence.
    """
    hosts = _own_addresses(request)
    host = request.headers.get("Host", "").lower()
    if hosts is None or host not in hosts:
        log.info("refused a %s %s addressed to Host %s", request.method, request.path, _shown(host))
        return error_response(421, f"This server only answers requests addressed to it as 127.0.0.1, localhost "
                                   f"or [::1] with its port, not to Host {_shown(host)}.")
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
        log.info("refused a %s %s from the web page origin %s", request.method, request.path, _shown(origin))
        return error_response(403, f"Requests from web pages (Origin {_shown(origin)}) are refused: this server "
                                   "only answers programs on this computer.", code="cross_origin_refused")
    return await handler(request)


async def _not_found(request: web.Request) -> web.Response:
    return error_response(404, f"Unknown route: {request.method} {request.path}.", code="unknown_url")


def set_shaping(app: web.Application, shaping: Shaping | None) -> None:
    """Replace the shaping of a running app (takes effect from the next request).

    Same as `app["shaping"] = shaping` but without aiohttp's warnings about changing a started app's
    state: shaping is meant to change between requests.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        app["shaping"] = shaping if shaping is not None else Shaping()


def server_options(read_timeout_s: float = READ_TIMEOUT_S) -> dict[str, Any]:
    """The options to serve create_app's app with (web.AppRunner(app, **...), web.run_app(app, **...)).

    handler_cancellation: a client that hangs up during the first-byte delay is noticed at once, not at the
    next write. keepalive_timeout: aiohttp arms it when a connection opens and after each response, and
    closes the connection if no complete request head has arrived by then; trickled bytes do not re-arm it,
    so it is the bound on how long a client may take to send its headers (slowloris)."""
    return {"handler_cancellation": True, "keepalive_timeout": read_timeout_s, "access_log": None}


def create_app(engine: Engine, shaping: Shaping | None = None, token: str | None = None,
               read_timeout_s: float = READ_TIMEOUT_S) -> web.Application:
    """Build the speech server app. Serve it with `server_options(read_timeout_s)` (as ServerThread and
    `voicegui serve` do); `read_timeout_s` also bounds the time to receive a request body."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_this_machine_only])
    with warnings.catch_warnings():
        # Plain string keys are the documented interface (app["shaping"], app["records"]) for tests and
        # benchmarks; aiohttp's advice to use AppKey objects does not apply.
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["engine"] = engine
        app["shaping"] = shaping if shaping is not None else Shaping()
        app["token"] = token
        app["read_timeout_s"] = read_timeout_s
        app["records"] = []
        app["_ids"] = itertools.count(1)
        app["created"] = int(time.time())
    app.router.add_post("/v1/audio/speech", _speech)
    app.router.add_post("/dev/captioned_speech", _captioned)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/v1/audio/voices", _voices)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app
