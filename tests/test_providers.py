"""Providers: model/voice listing against the real built-in server and a tiny aiohttp server on 127.0.0.1
serving each voices-endpoint shape (and none), capabilities, and the connection test's messages."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import subprocess
import sys
import time
import zlib
from datetime import date
from pathlib import Path

import pytest
from aiohttp import web

from tests.json_server import routes_app
from tests.procstats import rss_mb
from voicegui import providers as pv
from voicegui.openai_models import SPEECH_VOICES, shutdown_notice
from voicegui.server.embedded import BuiltinServer


@pytest.fixture(scope="module")
def builtin():
    with BuiltinServer() as srv:
        yield srv


@pytest.fixture
def make_server(local_app):
    """make(routes, token=None) -> base URL of tests.json_server.routes_app(routes, token) on 127.0.0.1."""

    async def make(routes, token=None) -> str:
        return await local_app(routes_app(routes, token))

    return make


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


async def test_builtin_server_lists_its_models_and_voices(builtin):
    models = await pv.list_models(builtin.base_url, builtin.token)
    assert [m.id for m in models] == builtin.models()
    assert all(m.shutdown_date is None for m in models)
    voices = await pv.list_voices(builtin.base_url, builtin.token, "builtin")
    assert [v.id for v in voices] == [v.id for v in builtin.voices()]
    assert builtin.default_voice in {v.id for v in voices}
    message = await pv.test_connection(builtin.base_url, builtin.token)
    assert message.startswith("Connected") and f"{len(voices)} voices" in message


async def test_builtin_server_refuses_a_wrong_token(builtin):
    with pytest.raises(pv.ProviderError, match="rejected the API key"):
        await pv.list_voices(builtin.base_url, "wrong", "builtin")
    message = await pv.test_connection(builtin.base_url, "wrong")
    assert not message.startswith("Connected") and "401" in message


async def test_voices_as_objects(make_server):
    url = await make_server({"/v1/audio/voices": {"voices": [{"id": "af_bella", "name": "Bella"},
                                                             {"id": "af_sky", "name": "Sky"}]}})
    voices = await pv.list_voices(url, None)
    assert voices == [pv.VoiceEntry("af_bella", "Bella"), pv.VoiceEntry("af_sky", "Sky")]
    assert pv.voices_hint(voices) == "Voices can be blended: type e.g. af_bella(2)+af_sky(1) as the voice."


async def test_voices_as_strings(make_server):
    url = await make_server({"/v1/audio/voices": {"voices": ["am_adam", "bf_emma", "am_adam"]}})
    voices = await pv.list_voices(url, None)
    assert voices == [pv.VoiceEntry("am_adam", "am_adam"), pv.VoiceEntry("bf_emma", "bf_emma")]


async def test_server_without_lists_gets_no_models_and_no_voices(make_server):
    url = await make_server({"/v1/other": {}})  # every other path 404s
    voices = await pv.list_voices(url, None)
    # OpenAI's voice names failed with HTTP 502 on such a server: no list, and a reason the UI can show.
    assert voices == [] and voices.reason
    assert url in voices.reason and "voice id" in voices.reason and "\n" not in voices.reason
    # OpenAI's models (the Realtime ones above all: "key not allowed" on a server without the Realtime API)
    # are not offered either: the user types the model id.
    models = await pv.list_models(url, None)
    assert models == [] and models.reason == f"{url} lists no models (/models answered 404); type the model id " \
                                             "the server expects."
    message = await pv.test_connection(url, None)
    assert message == f"Connected to {url}, but it lists no models (/models answered 404); type the model id."



# Voice lists as servers in the wild send them: (routes, the ids expected, in order, once each).
_MANY = [f"v{i:04d}" for i in range(1684)]
VOICE_SHAPES = {
    "voices-objects": ({"/v1/audio/voices": {"voices": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}},
                       ["a", "b"]),
    "voices-strings": ({"/v1/audio/voices": {"voices": ["a", "b", "a"]}}, ["a", "b"]),
    "data-strings": ({"/v1/audio/voices": {"data": ["x", "y", "x", "z"]}}, ["x", "y", "z"]),
    "data-objects": ({"/v1/audio/voices": {"object": "list", "data": [
        {"id": "x", "name": "Ex"}, {"voice_id": "y", "name": "Why"}, {"name": "z"}, {"id": None, "voice_id": "w"},
        {"id": "x"}, {"nothing": 1}, 7]}}, ["x", "y", "z", "w"]),
    "status-ok": ({"/v1/audio/voices": {"status": "ok", "voices": [{"voice_id": "p"}, "q"]}}, ["p", "q"]),
    "1684-voices": ({"/v1/audio/voices": {"data": [{"id": v, "name": v.upper()} for v in _MANY]}}, _MANY),
    "only-at-/v1/voices": ({"/v1/voices": {"voices": ["m", "n"]}}, ["m", "n"]),
    "html-then-/v1/voices": ({"/v1/audio/voices": "<!doctype html><html><body>Docs</body></html>",
                              "/v1/voices": {"data": [{"id": "h"}]}}, ["h"]),
    "500-then-/v1/voices": ({"/v1/audio/voices": 500, "/v1/voices": ["k", "l"]}, ["k", "l"]),
    "empty-then-/v1/voices": ({"/v1/audio/voices": {"voices": []}, "/v1/voices": ["e"]}, ["e"]),
}


@pytest.mark.parametrize("shape", list(VOICE_SHAPES))
async def test_voice_list_shapes(make_server, shape):
    routes, expected = VOICE_SHAPES[shape]
    url = await make_server({"/v1/models": {"data": [{"id": "kokoro"}]}, **routes})
    voices = await pv.list_voices(url, None)
    assert [v.id for v in voices] == expected
    assert voices.reason is None
    message = await pv.test_connection(url, None)
    assert f"{len(expected)} voice" in message


async def test_voice_names_are_kept(make_server):
    url = await make_server({"/v1/audio/voices": {"data": [{"voice_id": "y", "name": "Why"}, {"id": "x"}]}})
    assert await pv.list_voices(url, None) == [pv.VoiceEntry("y", "Why"), pv.VoiceEntry("x", "x")]


@pytest.mark.parametrize("routes", [
    {"/v1/audio/voices": "<html><body>voices</body></html>"},
    {"/v1/audio/voices": "<html>voices</html>", "/v1/voices": "<html>voices</html>"},
    {"/v1/audio/voices": {"voices": []}, "/v1/voices": {"detail": "Not Found"}},
    {"/v1/audio/voices": {"voices": "af_bella"}},
], ids=["html", "html-twice", "empty-lists", "not-a-list"])
async def test_no_usable_voice_list_is_empty_with_a_reason(make_server, routes):
    url = await make_server({"/v1/models": {"data": [{"id": "kokoro"}]}, **routes})
    voices = await pv.list_voices(url, None)
    assert voices == [] and url in (voices.reason or "") and "\n" not in (voices.reason or "")
    message = await pv.test_connection(url, None)
    assert "no voice list" in message


async def test_voice_list_at_v1_voices_still_needs_the_key(make_server):
    url = await make_server({"/v1/voices": ["m"]}, token="k")
    assert [v.id for v in await pv.list_voices(url, "k")] == ["m"]
    with pytest.raises(pv.ProviderError, match="rejected the API key"):
        await pv.list_voices(url, "bad")


async def test_models_with_shutdown_dates_and_auth(make_server):
    payload = {"object": "list", "data": [{"id": "tts-1", "shutdown_date": "2027-01-06"},
                                          {"id": "kokoro", "shutdown_date": None}]}
    url = await make_server({"/v1/models": payload}, token="k")
    models = await pv.list_models(url, "k")
    assert models == [pv.ModelInfo("tts-1", date(2027, 1, 6)), pv.ModelInfo("kokoro", None)]
    assert shutdown_notice("tts-1", pv.models_payload(models), today=date(2026, 11, 25))
    assert shutdown_notice("kokoro", pv.models_payload(models)) is None
    with pytest.raises(pv.ProviderError, match="Incorrect API key"):
        await pv.list_models(url, "bad")


async def test_unreachable_server_is_a_clear_error():
    url = closed_port_url()
    with pytest.raises(pv.ProviderError, match="Could not connect to"):
        await pv.list_models(url, None, timeout_s=2)
    message = await pv.test_connection(url, None, timeout_s=2)
    assert message.startswith("Could not connect to " + url)
    assert "must start with http" in await pv.test_connection("localhost:8880", None)


@pytest.mark.parametrize("url", ["http://[/v1", "http://[::1/v1", "http://127.0.0.1:99999/v1"])
async def test_malformed_base_url_is_a_clear_error(url):
    # urlsplit raises ValueError on an unclosed IPv6 bracket: it used to escape list_voices as a traceback.
    with pytest.raises(pv.ProviderError, match="not a valid URL"):
        await pv.list_voices(url, None, timeout_s=2)
    with pytest.raises(pv.ProviderError, match="not a valid URL"):
        await pv.list_models(url, None, timeout_s=2)
    assert "not a valid URL" in await pv.test_connection(url, None, timeout_s=2)


def test_openai_model_list_is_cut_to_speech_models():
    payload = {"data": [{"id": "gpt-5"}, {"id": "tts-1"}, {"id": "gpt-4o-mini-tts"}, {"id": "dall-e-3"},
                        {"id": "gpt-realtime-2.1-mini"}]}
    assert [m.id for m in pv.parse_models(payload, "https://api.openai.com/v1")] == [
        "tts-1", "gpt-4o-mini-tts", "gpt-realtime-2.1-mini"]
    assert len(pv.parse_models(payload, "http://localhost:8880/v1")) == 5


async def test_openai_voices_are_known_without_a_request():
    voices = await pv.list_voices("https://api.openai.com/v1", None, "tts-1")
    assert [v.id for v in voices] == list(SPEECH_VOICES)
    realtime = await pv.list_voices("https://api.openai.com/v1", None, "gpt-realtime-2.1-mini")
    assert "fable" not in [v.id for v in realtime] and realtime[0].id == "marin"


def test_capabilities():
    assert pv.supports_instructions("gpt-4o-mini-tts")
    assert pv.supports_instructions("gpt-realtime-2.1-mini")
    assert not pv.supports_instructions("tts-1") and not pv.supports_instructions("tts-1-hd")
    assert not pv.supports_instructions("builtin")
    assert pv.speed_range("tts-1") == (0.25, 4.0)
    assert pv.speed_range("gpt-realtime-2.1-mini") == (0.25, 1.5)
    assert pv.realtime_voice_for("fable") == "marin" and pv.realtime_voice_for("cedar") == "cedar"
    assert pv.PROVIDERS["builtin"].url_editable is False
    assert pv.PROVIDERS["openai"].base_url == "https://api.openai.com/v1"
    assert pv.PROVIDERS["kokoro"].base_url == "http://localhost:8880/v1"


def test_openai_realtime_provider_shares_the_key_and_offers_only_realtime_models():
    from voicegui import providers as pv

    prov = pv.PROVIDERS[pv.OPENAI_REALTIME]
    assert prov.label == "OpenAI Realtime" and prov.needs_key
    assert pv.key_owner(pv.OPENAI_REALTIME) == pv.OPENAI and pv.key_owner(pv.KOKORO) == pv.KOKORO
    offered = pv.models_for(pv.OPENAI_REALTIME, pv.known_models())
    assert offered and all(m.id.startswith("gpt-realtime") for m in offered)
    assert prov.default_model in {m.id for m in offered}
    assert [m.id for m in pv.models_for(pv.OPENAI, pv.known_models())] == [m.id for m in pv.known_models()]


# --- hostile servers: the list refresh runs on every Base URL edit, so it must stay bounded ----------------


def _bomb_block() -> bytes:
    """64 MiB of zeros deflated (~64 KB), ending on a full flush so it can be repeated inside one stream."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    return comp.compress(b"\0" * (64 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)


async def _hostile(make_raw_server, kind: str) -> str:
    """A server whose GET /models is a gzip bomb, an endless JSON list or a trickle (1 byte / 0.2 s)."""
    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json"}
        if kind == "gzip-bomb":
            headers["Content-Encoding"] = "gzip"
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        try:
            if kind == "gzip-bomb":
                block = _bomb_block()
                for _ in range(4):  # 256 MiB decompressed: enough to show, not enough to hurt the machine
                    await resp.write(block)
            elif kind == "endless-json":
                await resp.write(b"[")
                item = b'{"id": "tts-1"},' * 4096
                for _ in range((128 << 20) // len(item)):
                    await resp.write(item)
            elif kind == "deep-json":
                await resp.write(b"[" * 200_000)
            else:
                await resp.write(b"[")
                for _ in range(300):  # a minute of trickle: far past the timeout
                    await asyncio.sleep(0.2)
                    await resp.write(b" ")
        except ConnectionError:
            pass  # the client gave up: what we want
        return resp

    return await make_raw_server(handler)


@pytest.fixture
def make_raw_server(local_app):
    """make(handler) -> base URL of a server whose GET /v1/models is `handler`."""

    async def make(handler) -> str:
        app = web.Application()
        app.router.add_get("/v1/models", handler)
        return await local_app(app)

    return make


@pytest.mark.parametrize("kind", ["gzip-bomb", "endless-json"])
async def test_model_list_body_past_the_bound_is_refused_with_bounded_memory(make_raw_server, kind):
    url = await _hostile(make_raw_server, kind)
    before = rss_mb()
    t0 = time.monotonic()
    with pytest.raises(pv.ProviderError) as info:
        await pv.list_models(url, None, timeout_s=30)
    grown = rss_mb() - before
    message = str(info.value)
    assert "more than 4 MB" in message and "/models" in message and "\n" not in message, message
    assert time.monotonic() - t0 < 25  # generous; it stopped reading instead of running into the timeout
    assert grown < 100, f"RSS grew {grown:.0f} MB"
    assert (await pv.test_connection(url, None, timeout_s=30)) == message  # the same one sentence


async def test_model_list_trickle_ends_at_the_timeout(make_raw_server):
    url = await _hostile(make_raw_server, "trickle")
    t0 = time.monotonic()
    with pytest.raises(pv.ProviderError, match="did not answer within 1 s"):
        await pv.list_models(url, None, timeout_s=1.0)
    assert time.monotonic() - t0 < 15  # the total timeout covers the body, not only the headers


async def test_model_list_nested_too_deep_is_an_unreadable_answer(make_raw_server):
    url = await _hostile(make_raw_server, "deep-json")
    models = await pv.list_models(url, None)  # like any body that is not a model list
    assert models == [] and "/models is not a model list" in (models.reason or "")


async def test_gzip_encoded_model_list_is_read(make_raw_server):
    async def handler(request: web.Request) -> web.Response:
        assert "gzip" in request.headers.get("Accept-Encoding", "")
        return web.Response(body=gzip.compress(b'{"data": [{"id": "kokoro"}]}'),
                            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    models = await pv.list_models(await make_raw_server(handler), None)
    assert [m.id for m in models] == ["kokoro"]


async def test_a_redirected_model_list_is_followed(make_raw_server, local_app):
    async def listed(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "kokoro"}]})

    target = await make_raw_server(listed)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound(target + "/models")

    app = web.Application()
    app.router.add_get("/v1/models", moved)
    models = await pv.list_models(await local_app(app), None)
    assert [m.id for m in models] == ["kokoro"]


async def test_lists_from_a_plain_http_server_read_no_ca_store(builtin, monkeypatch):
    import httpcore2

    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)  # as in a fresh process
    built = []
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context", lambda *a, **k: built.append(1) or real(*a, **k))
    assert await pv.list_models(builtin.base_url, builtin.token)
    assert await pv.list_voices(builtin.base_url, builtin.token, "builtin")
    assert built == [] and tls_contexts._tls_context is None


async def test_an_unreadable_ca_store_is_one_clear_sentence(monkeypatch, tmp_path):
    from voicegui import tls_contexts

    monkeypatch.setattr(tls_contexts, "_tls_context", None)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "missing"))
    with pytest.raises(pv.ProviderError, match="Could not load the certificates") as info:
        await pv.list_models("https://127.0.0.1:1/v1", None, timeout_s=2)
    assert "SSL_CERT_FILE" in str(info.value) and "\n" not in str(info.value)


def test_the_windows_http_calls_load_no_aiohttp_client(builtin):
    """A list from the built-in server (what the window asks for at start) and its word timings (each Speak's
    read-along) go through httpx2, which the window has anyway, not aiohttp's client (~3 MB, two TLS contexts
    from the CA store, ~80-120 ms of importing on the GUI thread)."""
    code = f"""
import asyncio, json, sys
from voicegui import providers as pv
from voicegui.aiohttp_import import web  # the window runs the built-in server in-process
from voicegui.features.captioned import fetch_timings
models = asyncio.run(pv.list_models({builtin.base_url!r}, {builtin.token!r}))
timings = asyncio.run(fetch_timings({builtin.base_url!r}, {builtin.token!r}, "builtin", {builtin.default_voice!r},
                                   "Hi.", 1.0))
print(json.dumps({{"models": len(models), "words": len(timings.words), "client": "aiohttp.client" in sys.modules}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == {"models": len(builtin.models()), "words": 1, "client": False}
