"""Fetch speech from an OpenAI-compatible server, handing the body on as it arrives.

`fetch_speech(req, marks, on_chunk)` POSTs /audio/speech through `AsyncOpenAI(...).audio.speech
.with_streaming_response.create(...)` and passes each piece of the body to `await on_chunk(bytes)`. While
on_chunk is awaited nothing more is read from the socket, which is how the caller applies backpressure
(TCP flow control then slows the server). Every failure comes out as one `FetchError` whose `kind` says what
went wrong and whose text is a sentence a user can act on.

`SpeechRequest.stream_format == "sse"` asks the same endpoint for Server-Sent Events (`stream_format: "sse"`
in the body): the events are read by `stream/sse.py` and each event's decoded audio is one on_chunk call, so
everything after the fetch is the same as for a plain audio body. Usage from the done event lands in
`FetchMarks.usage`; an error event, a stream without its done event (kind 'cut'), bad JSON or base64 are
FetchErrors; a server that answers with plain audio instead is played as such (`FetchMarks.sse_ignored`).

Measured with openai 3.57 / httpx2 2.16 against the built-in server (tests/stream/test_fetch.py):
- `iter_bytes(None)` does not buffer: its ByteChunker passes each socket read straight through, so each
  server write arrives as its own chunk. `iter_bytes(N)` holds bytes back until N have arrived: a latency
  knob. `chunk_bytes=None` (the default) therefore means "as they arrive".
- Errors: HTTP statuses raise openai.APIStatusError subclasses (with the server's JSON error as `.body`)
  from `__aenter__`; connection refused raises openai.APIConnectionError (cause httpx2.ConnectError); no
  headers within the timeout raises openai.APITimeoutError. Once the body is streaming the SDK no longer
  wraps errors: a body that ends early raises httpx2.RemoteProtocolError ("incomplete chunked read"), a
  reset raises httpx2.ReadError, a stall longer than the timeout raises httpx2.ReadTimeout.
- Cancelling the task leaves the `async with`, which closes the response; httpx2 then closes the
  connection instead of pooling it (the body was not fully read), so the server sees the disconnect.
  `iter_bytes()` is wrapped in `aclosing` so its async generator is finalised here and not later by the
  loop's asyncgen hooks (qasync installs none, see docs/architecture.md).

TLS: certificates are always verified (the SDK's default httpx2 client; we never pass verify=False). A
certificate that fails verification is a FetchError of kind 'tls' whose text says "certificate" and why. The
client gets its TLS context from voicegui/tls_contexts.py: one shared verifying context for https servers, read
from the CA store once and on a worker thread (`tls_ready`, awaited here and by stream/realtime.py), and for a
plain http server one that trusts no CA, so such a client reads no CA store; should that server redirect to
https, the handshake fails closed and the error says to give the https address (`_tls_message`).
Plain http to a host other than loopback is allowed (local network servers are common) but
`insecure_http_warning(base_url)` gives the warning that the CLI and the window show: the key and the text
travel unencrypted.

Threads: runs on the caller's asyncio loop (plain asyncio in the CLI, qasync in the window); Qt-free.
Cancellation propagates as asyncio.CancelledError (never swallowed or converted); the 'cancelled' kind is
listed for callers that want to report a user's Stop in the same terms, fetch_speech itself never raises it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import importlib
import ipaddress
import logging
import re
import socket
import ssl
import time
import urllib.parse
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from voicegui.speech_sse import STREAM_FORMATS
from voicegui.stream.sse import SpeechEvents, SseError, is_event_stream
from voicegui.tls_contexts import needs_ca_store, tls_context_for, tls_ready

if TYPE_CHECKING:  # imported where used: the SDK costs ~1 s and ~56 MB, paid on the first Speak, not at start-up
    import openai

log = logging.getLogger(__name__)


@dataclass
class SpeechRequest:
    """One speech request. `chunk_bytes=None` hands bytes on as they arrive."""

    base_url: str
    api_key: str
    model: str
    voice: str
    text: str
    response_format: str
    speed: float | None = None
    instructions: str | None = None
    chunk_bytes: int | None = None
    timeout_s: float = 30.0
    # "audio": the body is the audio; "sse": Server-Sent Events carrying it in base64 (see stream/sse.py).
    stream_format: str = "audio"
    # Fields merged into the JSON body as given (a server's own: "stream", "lang_code", "seed", ...); the
    # caller keeps model/input/voice/response_format out of it (request_extras.parse_extra_body refuses them).
    extra_body: dict[str, Any] = field(default_factory=dict)
    # Send the voice as {"id": voice} (OpenAI's custom voices) instead of a name.
    voice_object: bool = False
    # The "stream" field in extra_body is voicegui's default guess, not the user's choice: a strict server that
    # refuses the field (pydantic extra="forbid", e.g. tts-daemon) gets the request again without it, once,
    # logged and marked (FetchMarks.stream_field_dropped, --json), and that server is not sent it again in this process.
    stream_field_auto: bool = False


class TimedOnChunk(Protocol):
    """A session's on_chunk as a source (SpeakOptions.source) may call it: with the time the bytes came off the
    network, when that was earlier than the call (stream/early_fetch.py)."""

    def __call__(self, data: bytes, arrived: float | None = None) -> Awaitable[None]: ...


@dataclass
class FetchMarks:
    """time.monotonic() marks, filled in as they happen (None until then), and the response's headers (names in
    lower case; what a raw pcm body is may only be said there)."""

    request_sent: float | None = None
    headers: float | None = None
    first_byte: float | None = None
    # the request's last byte handed to the socket (HTTP/1.1: httpcore's trace); None until then, and for a
    # request that never got that far
    request_written: float | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    # stream_format "sse" only: the usage the done event reported (as the server sent it, e.g. input_tokens,
    # output_tokens, total_tokens), and whether the server answered with plain audio instead of events.
    usage: dict[str, Any] | None = None
    sse_ignored: bool = False
    # The server refused the default "stream": true field; the request was sent again without it.
    stream_field_dropped: bool = False


class FetchError(Exception):
    """A speech fetch failed. `kind` is one of KINDS; `status` is the HTTP status when there was one.

    str(error) is one sentence for the user, naming the model/voice/server as relevant and quoting the
    server's own message when it sent one. `bytes_received` says how much of the body arrived first.
    """

    KINDS = ("auth", "permission", "not_found", "bad_request", "rate_limit", "server", "http", "connection",
             "tls", "timeout", "cut", "protocol", "cancelled")

    def __init__(self, kind: str, message: str, status: int | None = None, server_message: str | None = None,
                 bytes_received: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.server_message = server_message
        self.bytes_received = bytes_received


def _server_message(exc: openai.APIStatusError) -> str | None:
    """The server's own error text: OpenAI JSON error, a bare JSON message, or a short plain-text body."""
    body: Any = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            msg = inner.get("message") or inner.get("detail")
        else:
            msg = inner
        if msg is None:
            msg = body.get("detail") or body.get("message")
        fields = _validation_errors(msg)
        if fields is not None:
            return fields
        if isinstance(msg, (dict, list)):
            msg = str(msg)
        return str(msg).strip() or None if msg is not None else None
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return None


def _validation_errors(detail: Any) -> str | None:
    """A FastAPI/pydantic 422 `detail` list ([{"loc": ["body", "speed"], "msg": ...}, ...]) as words:
    "speed: Input should be less than or equal to 4" (the first three, '; '-joined); None if it is not one."""
    if not isinstance(detail, list) or not detail:
        return None
    parts = []
    for item in detail[:3]:
        if not isinstance(item, dict) or not isinstance(item.get("msg"), str):
            return None
        loc = item.get("loc")
        path = [str(x) for x in loc if x != "body"] if isinstance(loc, list) else []
        parts.append(f"{'.'.join(path)}: {item['msg']}" if path else item["msg"])
    more = len(detail) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _looks_like_html(body: Any) -> bool:
    return isinstance(body, str) and body.lstrip()[:15].lower().startswith(("<!doctype html", "<html", "<head",
                                                                            "<body", "<title", "<h1", "<pre"))


# What a web framework answers for a path it has no route for: Starlette/FastAPI {"detail": "Not Found"},
# aiohttp "404: Not Found", or a bare reason phrase. An API that knows the path but not the model or voice
# says which (OpenAI: {"error": {"param": "voice", ...}}).
_NO_ROUTE = re.compile(r"^(?:40[45]:?\s*)?(?:not found|method not allowed)\.?$", re.IGNORECASE)


def _no_speech_route(exc: openai.APIStatusError) -> str | None:
    """How a 404/405 says nothing is at this URL ("a web page", "'Not Found'"), rather than that the model or
    voice is unknown; None if it is not such an answer."""
    if exc.status_code not in (404, 405):
        return None
    body: Any = exc.body
    if _looks_like_html(body):
        return "a web page"
    if isinstance(body, dict) and set(body) <= {"detail", "message"}:
        body = body.get("detail", body.get("message"))
    if isinstance(body, str) and _NO_ROUTE.match(body.strip()):
        return f"'{body.strip()}'"
    return None


def insecure_http_warning(base_url: str) -> str | None:
    """A one-line warning when `base_url` is plain http to a host that is not this machine, else None.

    Loopback (127.0.0.0/8, ::1, localhost) is exempt: the built-in server and local Kokoro live there and the
    bytes never leave the machine. Anything else over http sends the API key and the text in clear.
    """
    try:
        parts = urllib.parse.urlsplit(base_url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() != "http":
        return None
    host = (parts.hostname or "").lower()
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a name, not an address: not loopback
    return (f"warning: {parts.scheme}://{parts.netloc} is plain http to another machine: the API key and the "
            "text are sent unencrypted; use https if the server offers it.")


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error somewhere in an exception chain, if the failure was TLS."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _tls_message(err: ssl.SSLError, req: SpeechRequest) -> str:
    if not needs_ca_store(req.base_url):
        return (f"The speech server at {req.base_url} sent the request on to an https address (a redirect, or an "
                "https proxy), and voicegui checks certificates only for a base URL that starts with https: give "
                "the https address as the base URL.")
    if isinstance(err, ssl.SSLCertVerificationError):
        why = err.verify_message or "verification failed"
        return (f"Could not connect securely to the speech server at {req.base_url}: its TLS certificate was "
                f"rejected ({why}). Certificate verification stays on: give the server a certificate this "
                "system trusts.")
    reason = getattr(err, "reason", None) or str(err)
    return (f"Could not connect securely to the speech server at {req.base_url}: the TLS handshake failed "
            f"({reason}). Is it really an https server (certificate and protocol)?")


def cause_text(exc: BaseException) -> str:
    """The innermost useful reason from an exception chain, in words ('connection refused', ...)."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for e in reversed(seen):
        if isinstance(e, socket.gaierror):
            return f"the host name could not be resolved ({e.strerror or e})"
        if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
            return "connection refused (nothing is listening on that port)"
        if isinstance(e, OSError) and e.errno == errno.EHOSTUNREACH:
            return "the host is unreachable"
    for e in reversed(seen):
        text = str(e).strip()
        if text and text not in ("Connection error.", "Request timed out."):
            return text
    return type(exc).__name__


def one_line(text: str) -> str:
    """`text` stripped, its runs of whitespace (line breaks among them) as one space: a server's words quoted
    in our one-line messages."""
    return " ".join(text.split())


def as_sentence(text: str) -> str:
    """`text` on one line (`one_line`) and ending in '.', '!' or '?': server messages go into our own one-line
    sentences."""
    text = one_line(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _about_stream_format(exc: openai.APIStatusError, server: str | None) -> bool:
    """Whether a refusal names stream_format (OpenAI's `param`, or the server's words)."""
    return getattr(exc, "param", None) == "stream_format" or "stream_format" in (server or "") \
        or "sse" in (server or "").lower().split()


def _status_error(exc: openai.APIStatusError, req: SpeechRequest) -> FetchError:
    status = exc.status_code
    what = _no_speech_route(exc)
    if what is not None:
        # Not an API error: nothing at this URL speaks the OpenAI API (a base URL without /v1, or a server
        # without a speech endpoint). Its web page is no message for the user.
        url = req.base_url.rstrip("/")
        hint = "" if url.endswith("/v1") else " Does the base URL need to end in /v1?"
        return FetchError("not_found", f"The server at {req.base_url} has no OpenAI speech endpoint: POST "
                                       f"{url}/audio/speech answered HTTP {status} with {what}.{hint}",
                          status=status)
    server = _server_message(exc)
    says = f" The server said: {as_sentence(server)}" if server else ""
    where = f"{req.base_url}"
    if status == 422 and isinstance(exc.body, dict) and _validation_errors(exc.body.get("detail")) is not None:
        hint = ""
        if "stream" in req.extra_body and refuses_stream_field(server):
            # a strict server (pydantic extra="forbid") that has no such field
            hint = (" Stop sending \"stream\" (the provider's 'Ask the server to stream': no; --stream-field "
                    "off).")
        return FetchError("bad_request", f"The server at {where} refused a field of the request (HTTP 422): "
                                         f"{as_sentence(server or '')}{hint}", status=status, server_message=server)
    if status == 401:
        kind, msg = "auth", f"The server at {where} rejected the API key (HTTP 401)."
    elif status == 403:
        kind, msg = "permission", f"The API key is not allowed to use model '{req.model}' at {where} (HTTP 403)."
    elif status == 404:
        param = getattr(exc, "param", None)
        if param == "voice":
            what = f"voice '{req.voice}'"
        elif param == "model":
            what = f"model '{req.model}'"
        else:
            what = f"model '{req.model}' or voice '{req.voice}'"
        kind, msg = "not_found", f"The server at {where} does not know {what} (HTTP 404)."
    elif status in (400, 422) and req.stream_format == "sse" and _about_stream_format(exc, server):
        kind, msg = "bad_request", (f"The server at {where} refused stream format 'sse' for model '{req.model}' "
                                    f"(HTTP {status}); use stream format 'audio' (--stream-format audio), or a "
                                    "model that streams events (OpenAI: gpt-4o-mini-tts or newer, not tts-1).")
    elif status in (400, 422):
        kind, msg = "bad_request", f"The server at {where} refused the request as invalid (HTTP {status})."
    elif status == 429:
        kind, msg = "rate_limit", f"The server at {where} is rate limiting or out of quota (HTTP 429); " \
                                  "try again later."
    elif status >= 500:
        kind, msg = "server", f"The server at {where} failed (HTTP {status})."
    else:
        kind, msg = "http", f"The server at {where} answered HTTP {status}."
    if kind == "server" and status in (500, 501):
        # Seen: a server that cannot make one of the formats it lists (ovos-tts-server's aac: HTTP 500).
        # Its own text rarely says what to change; these are the settings that can.
        says += (f" It may not be able to make {req.response_format} with voice '{req.voice}': try another format "
                 f"(--format, the Format picker) or voice.")
    return FetchError(kind, msg + says, status=status, server_message=server)


def _timeout_hint(req: SpeechRequest) -> str:
    """What to change after a timeout: a server that renders the whole text before its first byte (Kokoro
    ONNX, LocalAI without `"stream": true`) answers late, and later the longer the text."""
    if req.extra_body.get("stream") is True:
        return " Allow it more time (--timeout-s on the command line)."
    return (" A server that renders the whole text first answers late: ask it to stream (the provider's "
            "'Ask the server to stream' setting, --stream-field on the command line) or allow it more time "
            "(--timeout-s).")


_sdk_imported = False
# What a speech request imports beyond `import openai`: the SDK loads these at the first request (~35 ms of
# it, measured after `import openai`), so the window's preload and `voicegui speak`'s import them ahead.
SPEECH_REQUEST_MODULES = ("openai", "openai.resources.audio.speech", "openai.types.audio.speech_create_params",
                          "httpcore2", "anyio._backends._asyncio")


def import_speech_modules() -> None:
    """Import SPEECH_REQUEST_MODULES (blocking: for a worker thread)."""
    for name in SPEECH_REQUEST_MODULES:
        importlib.import_module(name)


async def import_sdk() -> None:
    """Import the openai SDK and what its first speech request uses (~1 s the first time) in a worker thread,
    so the loop (the window's GUI thread) keeps running meanwhile; at once once it is in."""
    global _sdk_imported
    if not _sdk_imported:
        await asyncio.to_thread(import_speech_modules)
        _sdk_imported = True


def openai_client(req: SpeechRequest, marks: FetchMarks | None = None, **options: Any) -> openai.AsyncOpenAI:
    """An AsyncOpenAI for one request: no retries (a retry would hide the first failure and double the wait),
    the request's timeout, the shared TLS context; with `marks`, `marks.request_written` is set when the
    request's last byte has been written. `options` go to AsyncOpenAI as they are."""
    import openai

    try:
        tls = tls_context_for(req.base_url)
    except (ssl.SSLError, OSError) as exc:
        raise FetchError("tls", f"Could not load the certificates to check servers against ({exc}). If SSL_CERT_FILE "
                                "or SSL_CERT_DIR is set, does it name a readable file or folder?") from exc
    # The SDK refuses an empty key; local servers without a token do not look at it.
    return openai.AsyncOpenAI(base_url=req.base_url, api_key=req.api_key or "none", max_retries=0,
                              timeout=req.timeout_s, http_client=openai.DefaultAsyncHttpxClient(
                                  verify=tls, event_hooks={} if marks is None else {"request": [_tracer(marks)]}),
                              **options)


def _tracer(marks: FetchMarks) -> Callable[[Any], Awaitable[None]]:
    """An httpx request hook that asks httpcore to report the request's progress (its "trace" extension) and
    sets `marks.request_written` once the body is out. `marks.request_sent` is set before the SDK builds the
    request; a fresh `voicegui speak` waits for this one before it imports its audio stack on other threads,
    whose imports hold the GIL the connection and the write still need."""

    async def on_progress(name: str, _info: dict[str, Any]) -> None:
        if name == "http11.send_request_body.complete":
            marks.request_written = time.monotonic()

    async def hook(request: Any) -> None:
        request.extensions = {**request.extensions, "trace": on_progress}

    return hook


def _event_reader(req: SpeechRequest, marks: FetchMarks) -> SpeechEvents | None:
    """The event reader for an sse response, None when the body is the audio itself. A server that ignores
    stream_format and sends audio is played as it is (and says so in the log and in `marks.sse_ignored`)."""
    if req.stream_format != "sse":
        return None
    if is_event_stream(marks.response_headers):
        return SpeechEvents(req.base_url)
    marks.sse_ignored = True
    log.warning("the server at %s ignored stream_format 'sse' and sent %s: playing it as audio", req.base_url,
                marks.response_headers.get("content-type") or "a body without a Content-Type")
    return None


def refuses_stream_field(server_message: str | None) -> bool:
    """Whether a 422's message (as _validation_errors words it: "loc: msg; ...") refuses the "stream" field."""
    return re.search(r"(^|; )stream:", server_message or "") is not None


# Base URLs that refused the default "stream" field in this process (bounded: a user talks to few servers).
_NO_STREAM_FIELD: set[str] = set()
_NO_STREAM_FIELD_MAX = 64


async def fetch_speech(req: SpeechRequest, marks: FetchMarks, on_chunk: Callable[[bytes], Awaitable[None]]) -> int:
    """Stream one speech response into `on_chunk`; return the number of audio bytes delivered.

    A strict server that refuses voicegui's default `"stream": true` (`req.stream_field_auto`) is asked once
    more without it, logged and marked in FetchMarks; the user's own choice (`--stream-field on`) is never dropped.
    """
    if req.stream_field_auto and "stream" in req.extra_body and req.base_url in _NO_STREAM_FIELD:
        req = _without_stream_field(req)
        marks.stream_field_dropped = True
    try:
        return await _fetch_once(req, marks, on_chunk)
    except FetchError as exc:
        if not (req.stream_field_auto and "stream" in req.extra_body and exc.status == 422
                and exc.bytes_received == 0 and refuses_stream_field(exc.server_message)):
            raise
        log.info("the server at %s refuses the \"stream\" field (%s); asking again without it",
                    req.base_url, exc.server_message)
        if len(_NO_STREAM_FIELD) < _NO_STREAM_FIELD_MAX:
            _NO_STREAM_FIELD.add(req.base_url)
        marks.stream_field_dropped = True
        return await _fetch_once(_without_stream_field(req), marks, on_chunk)


def _without_stream_field(req: SpeechRequest) -> SpeechRequest:
    body = {k: v for k, v in req.extra_body.items() if k != "stream"}
    return dataclasses.replace(req, extra_body=body, stream_field_auto=False)


async def _fetch_once(req: SpeechRequest, marks: FetchMarks, on_chunk: Callable[[bytes], Awaitable[None]]) -> int:
    """One request: fetch_speech without the retry.

    Raises FetchError on every network/HTTP failure (after delivering whatever arrived), lets exceptions
    from on_chunk and asyncio.CancelledError through unchanged, and always closes the connection and client.
    """
    await import_sdk()
    import httpx2
    import openai

    if req.chunk_bytes is not None and req.chunk_bytes <= 0:
        raise ValueError("chunk_bytes must be positive or None")
    if req.stream_format not in STREAM_FORMATS:
        raise ValueError(f"stream_format must be one of {STREAM_FORMATS}, not {req.stream_format!r}")
    await tls_ready(req.base_url)
    client = openai_client(req, marks)
    kwargs: dict[str, Any] = {"model": req.model, "voice": {"id": req.voice} if req.voice_object else req.voice,
                              "input": req.text, "response_format": req.response_format}
    if req.speed is not None:
        kwargs["speed"] = req.speed
    if req.instructions:
        kwargs["instructions"] = req.instructions
    if req.extra_body:
        kwargs["extra_body"] = req.extra_body
    if req.stream_format == "sse":
        # Only when asked: "audio" is the default, and some servers refuse fields they do not know.
        kwargs["stream_format"] = "sse"
        kwargs["extra_headers"] = {"Accept": "text/event-stream"}
    total = 0  # audio bytes handed to on_chunk (for sse: decoded from the events)

    async def hand_on(audio: bytes) -> None:
        nonlocal total
        if marks.first_byte is None:
            marks.first_byte = time.monotonic()
        total += len(audio)
        await on_chunk(audio)

    headers_seen = False
    try:
        log.debug("sending the speech request to %s (model %r, voice %r, %s)", req.base_url, req.model, req.voice,
                  req.response_format)
        marks.request_sent = time.monotonic()
        # The speech resource alone: `client.audio` would import every audio resource first (transcriptions,
        # translations, voices: ~28 ms of a `voicegui speak`'s start-up, for nothing).
        from openai.resources.audio.speech import AsyncSpeech

        async with AsyncSpeech(client).with_streaming_response.create(**kwargs) as response:
            marks.headers = time.monotonic()
            marks.response_headers = {k.lower(): v for k, v in response.headers.items()}
            headers_seen = True
            events = _event_reader(req, marks)
            # iter_bytes is an async generator (so it has aclose()); the SDK annotates it as an AsyncIterator.
            body = cast(AsyncGenerator[bytes, None], response.iter_bytes(req.chunk_bytes))
            async with contextlib.aclosing(body) as chunks:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    # For sse each event's audio is its own on_chunk call; first_byte is the first audio's.
                    for audio in (chunk,) if events is None else events.feed(chunk):
                        await hand_on(audio)
            if events is not None:
                for audio in events.end():
                    await hand_on(audio)
                marks.usage = events.finish()
        return total
    except SseError as exc:
        raise FetchError(exc.kind, str(exc), status=200, bytes_received=total) from exc
    except openai.APIStatusError as exc:
        raise _status_error(exc, req) from exc
    except openai.APITimeoutError as exc:
        raise FetchError("timeout", f"The server at {req.base_url} did not answer within {req.timeout_s:g} s "
                                    f"(model '{req.model}', voice '{req.voice}').{_timeout_hint(req)}") from exc
    except openai.APIConnectionError as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            raise FetchError("tls", _tls_message(tls, req)) from exc
        raise FetchError("connection", f"Could not connect to the speech server at {req.base_url}: "
                                       f"{as_sentence(cause_text(exc))} Is it running, and is the URL right?") from exc
    except httpx2.TimeoutException as exc:
        # Raised from the body stream: the SDK only wraps errors up to the headers.
        raise FetchError("timeout", f"The audio stream from {req.base_url} stalled for more than "
                                    f"{req.timeout_s:g} s after {total} bytes.", bytes_received=total) from exc
    except (httpx2.RemoteProtocolError, httpx2.ReadError) as exc:
        status = 200 if headers_seen else None
        raise FetchError("cut", f"The audio stream from {req.base_url} ended early after {total} bytes: "
                                f"the server closed the connection mid-response.", status=status,
                         bytes_received=total) from exc
    except httpx2.HTTPError as exc:
        raise FetchError("protocol", f"The speech request to {req.base_url} failed: "
                                     f"{as_sentence(cause_text(exc))}", bytes_received=total) from exc
    except openai.OpenAIError as exc:
        raise FetchError("protocol", f"The speech request to {req.base_url} failed: "
                                     f"{as_sentence(str(exc))}", bytes_received=total) from exc
    finally:
        # The response (and so its connection) was already closed when the `async with` exited; this
        # releases the pool.
        await client.close()
