"""Providers: where speech comes from (base URL + key source + capabilities), and what they offer.

A Provider preset names a kind of OpenAI-compatible speech server: the Built-in offline voices (the
default; the app starts one BuiltinServer and its base URL/token are filled in at run time), OpenAI,
Kokoro-FastAPI, or any Custom base URL. This module lists a server's models (GET /models) and voices
(GET /audio/voices, else GET /voices; `{"voices": [...]}`, `{"data": [...]}` or a bare list, of ids or of
objects with id/voice_id/name). OpenAI's known models and voices are offered for OpenAI itself only:
another server without a model or voice list gets an empty ModelList/VoiceList whose `reason` says so
and the user types the id (OpenAI's names, the Realtime models above all, fail on such servers). It
answers capability questions (does this model take `instructions`? which speed range?), detects a
server's profile on connect (`detect_profile`: the model and voice lists plus what voicegui.server_profile
makes of them and of the `Server` header), and tests a connection with one clear sentence for the user.

HTTP goes through httpx2, the client the speech requests use (the window has it loaded once the openai SDK is
preloaded; aiohttp's client, which this used before, cost the window ~3 MB and ~80 ms on its GUI thread at the
first list, with two TLS contexts built from the CA store at its import), one short-lived AsyncClient per call,
with the TLS context voicegui/tls_contexts.py gives for the URL (none read from the CA store for plain http).
Every call has a total timeout that covers the body too, so a dead or trickling server cannot hang the caller.
The lists are refreshed on every Base URL edit, so a hostile server must not be able to bloat the window either:
the raw body is read in chunks and decompressed here (gzip/deflate: httpx2's own decoding would inflate a whole
network read at once), and reading stops with a ProviderError past limits.MAX_JSON_BYTES (4 MiB) of compressed
or decompressed bytes: a gzip bomb or an endless JSON body costs at most that.

Threads: the coroutines run on the caller's asyncio loop (qasync's in the window, plain asyncio in the
CLI and tests). Qt-free. Nothing here logs or keeps the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from voicegui.limits import MAX_JSON_BYTES
from voicegui.openai_models import (
    DEFAULT_REALTIME_MODEL,
    DEFAULT_REALTIME_VOICE,
    REALTIME_MODEL_SHUTDOWN,
    REALTIME_MODELS,
    REALTIME_SPEED_RANGE,
    REALTIME_VOICES,
    SPEECH_MODEL_SHUTDOWN,
    SPEECH_MODELS,
    SPEECH_SPEED_RANGE,
    SPEECH_VOICES,
    is_openai_url,
    is_realtime_model,
    parse_date,
)
from voicegui.server_profile import KOKORO_VOICE, ServerProfile, identify
from voicegui.tls_contexts import needs_ca_store, short_lived_client

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
# Models that read `instructions` (tone, pace, accent); tts-1 and tts-1-hd ignore or reject them.
_INSTRUCTION_MODELS = frozenset({"gpt-4o-mini-tts"})


@dataclass(frozen=True)
class Provider:
    """A preset: `base_url` is the default (empty for Built-in: known only once its server runs)."""

    id: str
    label: str
    base_url: str
    needs_key: bool  # the server refuses requests without one
    url_editable: bool  # the user may point it elsewhere (not Built-in: the app owns that server)
    default_model: str
    default_voice: str


BUILTIN = "builtin"
OPENAI = "openai"
KOKORO = "kokoro"
CUSTOM = "custom"
# OpenAI's voices over the Realtime API (websocket): what keeps OpenAI voices working after the speech models'
# shutdown. Same account and key as OPENAI; only Realtime models are offered.
OPENAI_REALTIME = "openai_realtime"
OPENAI_FAMILY = frozenset({OPENAI, OPENAI_REALTIME})

PROVIDERS: dict[str, Provider] = {
    BUILTIN: Provider(BUILTIN, "Built-in (offline)", "", False, False, "builtin", "heart"),
    OPENAI: Provider(OPENAI, "OpenAI", "https://api.openai.com/v1", True, True, "gpt-4o-mini-tts", "coral"),
    OPENAI_REALTIME: Provider(OPENAI_REALTIME, "OpenAI Realtime", "https://api.openai.com/v1", True, True,
                              DEFAULT_REALTIME_MODEL, DEFAULT_REALTIME_VOICE),
    KOKORO: Provider(KOKORO, "Kokoro-FastAPI", "http://localhost:8880/v1", False, True, "kokoro", "af_heart"),
    CUSTOM: Provider(CUSTOM, "Custom", "http://127.0.0.1:8000/v1", False, True, "tts-1", "alloy"),
}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    shutdown_date: date | None = None


@dataclass(frozen=True)
class VoiceEntry:
    id: str
    name: str


class VoiceList(list[VoiceEntry]):
    """What list_voices returns: the voices, in the server's order; when empty, `reason` is one sentence for
    the user saying why (the server offers no voice list: a voice id has to be typed)."""

    def __init__(self, voices: Iterable[VoiceEntry] = (), reason: str | None = None) -> None:
        super().__init__(voices)
        self.reason = reason


class ModelList(list[ModelInfo]):
    """What list_models returns: the models, in the server's order; when empty, `reason` is one sentence for
    the user (the server lists no models: a model id has to be typed)."""

    def __init__(self, models: Iterable[ModelInfo] = (), reason: str | None = None) -> None:
        super().__init__(models)
        self.reason = reason


class ProviderError(Exception):
    """Listing or testing failed; str() is one sentence for the user. `status` is the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --- capabilities ----------------------------------------------------------------------------------------

def supports_instructions(model: str) -> bool:
    """Whether `model` takes `instructions`: gpt-4o-mini-tts and the Realtime models do, tts-1(-hd) not."""
    return model in _INSTRUCTION_MODELS or is_realtime_model(model)


def speed_range(model: str) -> tuple[float, float]:
    """The `speed` range the model's API accepts: 0.25..4 for /audio/speech, 0.25..1.5 over Realtime."""
    return REALTIME_SPEED_RANGE if is_realtime_model(model) else SPEECH_SPEED_RANGE


def forces_pcm(model: str) -> bool:
    """The Realtime API always sends pcm16, whatever format is asked for."""
    return is_realtime_model(model)


def realtime_voice_for(voice: str) -> str:
    """A Realtime voice for `voice`: itself when the Realtime API has it (not fable/onyx/nova), else marin."""
    return voice if voice in REALTIME_VOICES else REALTIME_VOICES[0]


def key_owner(provider: str) -> str:
    """Whose stored key a provider uses: OpenAI Realtime shares OpenAI's (one account, one key)."""
    return OPENAI if provider in OPENAI_FAMILY else provider


def models_for(provider: str, models: list[ModelInfo]) -> list[ModelInfo]:
    """The models a provider offers out of a list: OpenAI Realtime only the Realtime ones."""
    if provider == OPENAI_REALTIME:
        return [m for m in models if is_realtime_model(m.id)]
    return models


def known_models(base_url: str = "") -> list[ModelInfo]:
    """OpenAI's speech + Realtime models, with the shutdown dates known to voicegui.openai_models: what OpenAI
    offers before (or without) its model list. Never offered for another server (see list_models)."""
    ids = list(SPEECH_MODELS) + list(REALTIME_MODELS)
    return [ModelInfo(m, SPEECH_MODEL_SHUTDOWN.get(m) or REALTIME_MODEL_SHUTDOWN.get(m)) for m in ids]


def known_voices(model: str = "") -> list[VoiceEntry]:
    """OpenAI's voices (the Realtime subset for a Realtime model)."""
    ids = REALTIME_VOICES if model and is_realtime_model(model) else SPEECH_VOICES
    return [VoiceEntry(v, v.capitalize()) for v in ids]


def models_payload(models: list[ModelInfo]) -> dict[str, Any]:
    """The models as a GET /models payload (what openai_models.shutdown_notice reads)."""
    return {"data": [{"id": m.id, "shutdown_date": m.shutdown_date.isoformat() if m.shutdown_date else None}
                     for m in models]}


def voices_hint(voices: list[VoiceEntry]) -> str | None:
    """Kokoro voices (af_bella, bm_george...) can be mixed: say how, since the list cannot show it."""
    kokoro = [v.id for v in voices if KOKORO_VOICE.match(v.id)]
    if len(kokoro) < 2:
        return None
    a, b = kokoro[0], kokoro[1]
    return f"Voices can be blended: type e.g. {a}(2)+{b}(1) as the voice."


# --- parsing ---------------------------------------------------------------------------------------------

def parse_models(payload: Any, base_url: str = "") -> list[ModelInfo]:
    """ModelInfo for each entry of a GET /models payload; OpenAI's (hundreds of chat/image models) is cut
    to the ones that speak."""
    data = payload.get("data") if isinstance(payload, Mapping) else payload
    out: list[ModelInfo] = []
    if isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                out.append(ModelInfo(item["id"], parse_date(item.get("shutdown_date"))))
            elif isinstance(item, str):
                out.append(ModelInfo(item))
    if is_openai_url(base_url):
        out = [m for m in out if "tts" in m.id or is_realtime_model(m.id)]
    return out


def parse_voices(payload: Any) -> list[VoiceEntry]:
    """Voices from a voice-list payload, in order, each id once: the list under "voices" (Kokoro, the
    built-in server, `{"status": "ok", "voices": [...]}`) or "data" (OpenAI-style list objects), or a bare
    list; each item an id string or an object whose id is the first string of id, voice_id, name (its
    label: name, else the id). Anything else (an HTML page, an error object) gives an empty list."""
    items: Any = payload
    if isinstance(payload, Mapping):
        items = payload.get("voices")
        if not isinstance(items, list):
            items = payload.get("data")
    out: list[VoiceEntry] = []
    seen: set[str] = set()
    if not isinstance(items, list):
        return out
    for item in items:
        if isinstance(item, str):
            vid, name = item, item
        elif isinstance(item, Mapping):
            # `"id": null` next to a voice_id happens: take the first field that is a usable id
            vid = next((v for v in (item.get(k) for k in ("id", "voice_id", "name")) if isinstance(v, str) and v),
                       "")
            label = item.get("name")
            name = label if isinstance(label, str) and label else vid
        else:
            continue
        if vid and vid not in seen:
            seen.add(vid)
            out.append(VoiceEntry(vid, name))
    return out


# --- HTTP ------------------------------------------------------------------------------------------------

def _url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + path


def _headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MB" if n >= 1 << 20 else f"{n} bytes"


async def _read_body(resp: httpx2.Response, base_url: str, path: str, max_bytes: int) -> bytes | None:
    """The body, decompressed, at most `max_bytes` (compressed or not); None for an encoding we did not ask
    for (an unreadable answer, like invalid JSON). ProviderError past the bound."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    inflate: Any = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    elif encoding not in ("", "identity"):
        log.info("%s%s: unexpected Content-Encoding %r; the answer is not read", base_url, path, encoding)
        return None
    too_big = ProviderError(f"{base_url} sent more than {_size(max_bytes)} for {path}, far more than a list of "
                            "models or voices; it was not read further.")
    out = bytearray()
    received = 0
    async for chunk in resp.aiter_raw(1 << 16):
        received += len(chunk)
        if received > max_bytes:
            raise too_big
        if inflate is None:
            out += chunk
            continue
        try:
            while chunk:
                # max_length: a few KB of a gzip bomb must not inflate to GBs in one call
                out += inflate.decompress(chunk, max_bytes - len(out) + 1)
                if len(out) > max_bytes:
                    raise too_big
                chunk = inflate.unconsumed_tail
        except zlib.error:
            log.info("%s%s: the %s body does not decompress; the answer is not read", base_url, path, encoding)
            return None
    return bytes(out)


async def _get_json(base_url: str, path: str, key: str | None, timeout_s: float,
                    max_bytes: int = MAX_JSON_BYTES, headers_out: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, JSON or None); ProviderError when the server cannot be reached, does not answer (body
    included) within `timeout_s`, or sends more than `max_bytes`. The response headers (names in lower
    case) go into `headers_out` if given."""
    url = _url(base_url, path)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (read for its check: a port out of range raises ValueError)
    except ValueError as exc:  # urlsplit's own complaint ("Invalid IPv6 URL") is no sentence for a user
        raise ProviderError(f"The base URL {base_url!r} is not a valid URL.") from exc
    if parts.scheme not in ("http", "https"):
        raise ProviderError(f"The base URL must start with http:// or https://, not {base_url!r}.")
    try:
        # Redirects are followed, as a browser would for a list (httpx2 drops the key on a change of host).
        client = await short_lived_client(base_url, timeout_s, follow_redirects=True)
    except (ssl.SSLError, OSError) as exc:
        raise ProviderError(f"Could not load the certificates to check {base_url} against ({exc}). If "
                            "SSL_CERT_FILE or SSL_CERT_DIR is set, does it name a readable file or folder?") from exc
    import httpx2  # imported by short_lived_client (on a worker): here only its exception classes are read

    headers = {**_headers(key), "Accept-Encoding": "gzip, deflate"}
    try:
        # One deadline for connect, headers and the body read below (httpx2's own timeouts are per step).
        async with asyncio.timeout(timeout_s), client as http, http.stream("GET", url, headers=headers) as resp:
            if headers_out is not None:
                headers_out.update({k.lower(): v for k, v in resp.headers.items()})
            raw = await _read_body(resp, base_url, path, max_bytes)
            try:
                body = None if raw is None else json.loads(raw)
            except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError), or
                # nested deeper than the parser's recursion limit: both an unreadable answer
                body = None
            return resp.status_code, body
    except (TimeoutError, httpx2.TimeoutException) as exc:
        raise ProviderError(f"{base_url} did not answer within {timeout_s:g} s.") from exc
    except httpx2.ConnectError as exc:
        reason = _os_error(exc)
        if isinstance(reason, ssl.SSLError) and not needs_ca_store(base_url):
            # An http base URL's client trusts no CA (tls_contexts), so a redirect to https fails closed here.
            raise ProviderError(f"{base_url} sent the request on to an https address (a redirect, or an https "
                                "proxy), and voicegui checks certificates only for a base URL that starts with "
                                "https: give the https address as the base URL.") from exc
        raise ProviderError(f"Could not connect to {base_url}: "
                            f"{reason.strerror if reason is not None else exc}.") from exc
    except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as exc:
        raise ProviderError(f"The base URL {base_url!r} is not a valid URL.") from exc
    except httpx2.HTTPError as exc:
        raise ProviderError(f"Could not talk to {base_url}: {exc}.") from exc


def _os_error(exc: BaseException) -> OSError | None:
    """Why a connection failed in the operating system's (or OpenSSL's) words: the first OSError with a message
    among `exc`'s causes ("Connect call failed ('127.0.0.1', 1)", "Name or service not known", a failed
    certificate check), or None."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _server_message(body: Any) -> str | None:
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(body.get("detail"), str):
            return body["detail"]
    return None


def _raise_for_auth(status: int, body: Any, base_url: str) -> None:
    if status in (401, 403):
        msg = _server_message(body)
        what = "rejected the API key" if status == 401 else "refused access"
        raise ProviderError(f"{base_url} {what} ({status})" + (f": {msg}" if msg else "."), status)


def _no_models_reason(base_url: str, status: int, body: Any) -> str:
    why = f"/models answered {status}" if status != 200 else (
        "/models is not a model list" if body is None else "/models has no models")
    return f"{base_url} lists no models ({why}); type the model id the server expects."


async def _models_answer(base_url: str, key: str | None, timeout_s: float,
                         headers_out: dict[str, str] | None = None) -> tuple[ModelList, Any]:
    """(the models, the /models payload as sent or None)."""
    status, body = await _get_json(base_url, "/models", key, timeout_s, headers_out=headers_out)
    _raise_for_auth(status, body, base_url)
    if status == 200:
        models = parse_models(body, base_url)
        if models:
            return ModelList(models), body
    if is_openai_url(base_url):
        return ModelList(known_models(base_url)), None
    reason = _no_models_reason(base_url, status, body)
    log.info("%s", reason)
    return ModelList(reason=reason), body if status == 200 else None


async def list_models(base_url: str, key: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> ModelList:
    """The server's models (GET /models). OpenAI without a usable answer gets its known list; another server
    without one (404/405/..., an unreadable or empty answer) an empty ModelList with a `reason`, never
    OpenAI's models. ProviderError if it is unreachable or refuses the key."""
    models, _payload = await _models_answer(base_url, key, timeout_s)
    return models


# Where servers keep their voice list, in the order asked: OpenAI-style /audio/voices (Kokoro, the built-in
# server), then /voices (servers that list voices beside /models).
VOICE_LIST_PATHS = ("/audio/voices", "/voices")


async def list_voices(base_url: str, key: str | None, model: str = "",
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> VoiceList:
    """The server's voices: GET /audio/voices, else GET /voices (see parse_voices for the shapes). OpenAI has
    no such endpoint: its known voices (the Realtime subset for a Realtime model) are returned. Another
    server without a usable list (404, an error, an HTML page, an empty list) gets an empty VoiceList with
    a `reason`, not OpenAI's names. ProviderError if unreachable, refused, or slower than `timeout_s` for
    all the requests together."""
    if is_openai_url(base_url) or is_realtime_model(model):
        return VoiceList(known_voices(model))
    deadline = time.monotonic() + timeout_s
    answers = []
    for path in VOICE_LIST_PATHS:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ProviderError(f"{base_url} did not answer within {timeout_s:g} s.")
        status, body = await _get_json(base_url, path, key, left)
        _raise_for_auth(status, body, base_url)
        if status == 200:
            voices = parse_voices(body)
            if voices:
                return VoiceList(voices)
            answers.append(f"{path} {'has no voices' if body is not None else 'is not a voice list'}")
        else:
            answers.append(f"{path} answered {status}")
    reason = (f"{base_url} offers no voice list ({', '.join(answers)}); type the voice id the server "
              "expects.")
    log.info("%s", reason)
    return VoiceList(reason=reason)


async def test_connection(base_url: str, key: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """One sentence saying whether the server answers and accepts the key, and what it offers.

    Success messages start with "Connected"; failures never do.
    """
    try:
        status, body = await _get_json(base_url, "/models", key, timeout_s)
        _raise_for_auth(status, body, base_url)
    except ProviderError as exc:
        return str(exc)
    if status >= 500:
        return f"{base_url} answered with a server error ({status}); try again later."
    models = parse_models(body, base_url) if status == 200 else []
    try:
        voices = [] if is_openai_url(base_url) else await list_voices(base_url, key, timeout_s=timeout_s)
    except ProviderError:
        voices = []
    parts = []
    if models:
        parts.append(f"{len(models)} model{'s' if len(models) != 1 else ''}")
    elif is_openai_url(base_url):
        parts.append("no model list (using OpenAI's)")
    else:
        parts.append("no model list (type the model id)")
    if voices:
        parts.append(f"{len(voices)} voice{'s' if len(voices) != 1 else ''}")
    elif not is_openai_url(base_url):
        parts.append("no voice list (type the voice id)")
    if status == 404 and not models and not is_openai_url(base_url):
        return f"Connected to {base_url}, but it lists no models (/models answered 404); type the model id."
    return f"Connected to {base_url}: " + ", ".join(parts) + "."


@dataclass(frozen=True)
class Detected:
    """What a connection learnt: the server's profile and its model and voice lists."""

    profile: ServerProfile
    models: ModelList
    voices: VoiceList


async def detect_profile(base_url: str, key: str | None, model: str = "",
                         timeout_s: float = DEFAULT_TIMEOUT_S) -> Detected:
    """GET /models (with its `Server` header) and the voice list, and the ServerProfile they give (see
    voicegui.server_profile). ProviderError as list_models/list_voices."""
    headers: dict[str, str] = {}
    models, payload = await _models_answer(base_url, key, timeout_s, headers)
    voices = await list_voices(base_url, key, model, timeout_s=timeout_s)
    profile = identify(payload, models_listed=bool(models), server_header=headers.get("server", ""),
                       voice_ids=[v.id for v in voices], is_openai=is_openai_url(base_url))
    return Detected(profile, models, voices)
