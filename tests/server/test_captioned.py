"""POST /dev/captioned_speech on the built-in server (real espeak-ng and hibari voices on 127.0.0.1) and the
client that turns its answer into Timings (features/captioned.py): sentence bounds are the engine's, words land
on the sound of the very audio /v1/audio/speech streams, within 100 ms; Kokoro-FastAPI's word shape parses too."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from voicegui.features.captioned import CaptionedError, fetch_timings, parse_response, route_url
from voicegui.server.engines import espeak as espeak_mod, hibari as hibari_mod
from voicegui.server.thread import ServerThread

TOKEN = "captioned-token"
SR = 24000


@pytest.fixture(scope="module", params=["espeak", "hibari"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerThread, str]]:
    mod = {"espeak": espeak_mod, "hibari": hibari_mod}[request.param]
    hint = mod.missing()
    if hint:
        pytest.skip(hint)
    if mod is espeak_mod:
        engine: Any = espeak_mod.EspeakEngine()
        voice = "espeak:en-us"
    else:
        engine, voice = hibari_mod.HibariEngine(warm=True, seed=0), "heart"
    with ServerThread(engine, token=TOKEN) as srv:
        yield srv, voice
    close = getattr(engine, "close", None)
    if close is not None:
        close()


async def streamed_pcm(srv: ServerThread, voice: str, text: str) -> np.ndarray:
    async with aiohttp.ClientSession() as client, client.post(
            srv.base_url + "/audio/speech", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": srv_model(srv), "input": text, "voice": voice, "response_format": "pcm"}) as resp:
        assert resp.status == 200
        raw = await resp.read()
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768


def srv_model(srv: ServerThread) -> str:
    return str(srv.app["engine"].models()[0])


def onsets(samples: np.ndarray, quiet_s: float = 0.08) -> list[float]:
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    out = [loud[0] / SR]
    out += [b / SR for a, b in zip(loud, loud[1:], strict=False) if b - a > quiet_s * SR]
    return out


def test_words_land_on_the_streamed_audio(server: tuple[ServerThread, str]) -> None:
    srv, voice = server
    text = "One. Two. Three."

    async def run() -> tuple[Any, np.ndarray]:
        t = await fetch_timings(srv.base_url, TOKEN, srv_model(srv), voice, text, 1.0)
        return t, await streamed_pcm(srv, voice, text)

    timings, audio = asyncio.run(run())
    assert [(w.text, w.source) for w in timings.words] == [("One.", "engine"), ("Two.", "engine"),
                                                          ("Three.", "engine")]
    assert not timings.estimated
    truth = onsets(audio)
    assert len(truth) == 3
    for word, onset in zip(timings.words, truth, strict=True):
        assert abs(word.start_s - onset) <= 0.100, (timings.words, truth)


def test_sentences_are_exact_and_words_inside_estimated(server: tuple[ServerThread, str]) -> None:
    srv, voice = server
    text = "Hello there, this is a test.  And a second sentence follows!"
    timings = asyncio.run(fetch_timings(srv.base_url, TOKEN, srv_model(srv), voice, text, 1.0))
    assert [(s.text, s.source) for s in timings.sentences] == [("Hello there, this is a test.", "engine"),
                                                               ("And a second sentence follows!", "engine")]
    assert timings.sentences[0].end_s == timings.sentences[1].start_s  # back to back, as the stream plays them
    # espeak-ng's words are its own word events (tests/server/test_espeak_events.py); hibari's are estimated
    assert [w.text for w in timings.words] == text.split() and timings.estimated == (voice == "heart")
    # the first word starts at the sentence's first sound: within its lead-in silence
    assert 0 <= timings.words[6].start_s - timings.sentences[1].start_s <= 0.1


def test_refusals_are_openai_shaped(server: tuple[ServerThread, str]) -> None:
    srv, voice = server

    async def post(body: dict[str, Any], token: str = TOKEN) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as client, client.post(
                route_url(srv.base_url), json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()

    status, data = asyncio.run(post({"model": srv_model(srv), "input": "Hi.", "voice": voice}, token="wrong"))
    assert status == 401
    status, data = asyncio.run(post({"model": srv_model(srv), "input": "Hi.", "voice": "nobody"}))
    assert status == 404 and "nobody" in data["error"]["message"]
    with pytest.raises(CaptionedError, match="HTTP 404"):
        asyncio.run(fetch_timings(srv.base_url, TOKEN, srv_model(srv), "nobody", "Hi.", 1.0))


def test_kokoro_word_timestamps_parse() -> None:
    text = "Hello, world. Bye."
    data = {"audio": base64.b64encode(b"\0\0").decode(), "audio_format": "mp3",
            "timestamps": [{"word": "Hello", "start_time": 0.1, "end_time": 0.4},
                           {"word": ",", "start_time": 0.4, "end_time": 0.4},
                           {"word": "world", "start_time": 0.5, "end_time": 0.9},
                           {"word": "Bye", "start_time": 1.2, "end_time": 1.5}]}
    t = parse_response(text, data)
    assert [(w.text, w.start_s, w.source) for w in t.words] == [("Hello", 0.1, "server"), (",", 0.4, "server"),
                                                               ("world", 0.5, "server"), ("Bye", 1.2, "server")]
    assert [(s.text, s.start_s, s.end_s) for s in t.sentences] == [("Hello, world.", 0.1, 0.9), ("Bye.", 1.2, 1.5)]
    for bad in ({}, {"timestamps": [{"word": "x"}]}, {"timestamps": [{"word": "x", "start_time": 2,
                                                                      "end_time": 1}]},
                {"timestamps": [], "timestamp_unit": "sentence", "audio_format": "pcm", "audio": "%%"}):
        with pytest.raises(CaptionedError):
            parse_response(text, bad)


def test_an_oversized_answer_is_refused_in_one_sentence(monkeypatch) -> None:
    """A server that answers the timings route without end is not read into memory without bound."""
    from aiohttp import web

    import voicegui.features.captioned as captioned

    monkeypatch.setattr(captioned, "MAX_RESPONSE_BYTES", 1 << 20)

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b'{"audio": "' + b"A" * (4 << 20))
        return resp

    assert "larger than 1 MiB" in refusal(endless)


def test_an_unreachable_or_silent_server_is_one_sentence() -> None:
    """Refused, or no answer within the deadline (which covers the whole answer): a CaptionedError each."""
    import socket

    from aiohttp import web

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(CaptionedError, match="could not be fetched"):
        asyncio.run(fetch_timings(closed, "k", "m", "v", "Hello.", 1.0, timeout_s=5))

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(2)  # past the client's 0.5 s; the server's clean-up waits for this handler
        return web.json_response({})

    message = refusal(silent, timeout_s=0.5)
    assert "could not be fetched" in message and "\n" not in message


def refusal(handler: Any, timeout_s: float = 60.0) -> str:
    """The CaptionedError's sentence when the timings route is served by `handler` on 127.0.0.1."""
    from aiohttp import web

    from tests.json_server import start_app

    app = web.Application()
    app.router.add_post("/dev/captioned_speech", handler)

    async def run() -> str:
        runner, url = await start_app(app)
        try:
            with pytest.raises(CaptionedError) as info:
                await fetch_timings(url, "k", "m", "v", "Hello.", 1.0, timeout_s=timeout_s)
            return str(info.value)
        finally:
            await runner.cleanup()

    return asyncio.run(run())


def test_an_answer_that_is_not_json_is_one_sentence() -> None:
    from aiohttp import web

    async def garbled(request: web.Request) -> web.Response:
        return web.Response(body=b'{"timestamps": [', content_type="application/json")

    message = refusal(garbled)
    assert message.startswith("The server's word timings are not JSON") and "\n" not in message


def test_the_answer_is_parsed_off_the_loop_thread(monkeypatch) -> None:
    """The answer (the whole audio in base64, analysed for its pauses) is parsed on a worker: the window's loop
    is its GUI thread, which keeps drawing and reading the speech meanwhile."""
    import threading

    from aiohttp import web

    import voicegui.features.captioned as captioned

    parsed_on: list[threading.Thread] = []
    real = captioned.parse_response

    def recording(text: str, data: Any) -> Any:
        parsed_on.append(threading.current_thread())
        return real(text, data)

    monkeypatch.setattr(captioned, "parse_response", recording)

    async def kokoro_like(request: web.Request) -> web.Response:
        return web.json_response({"audio": "", "timestamps": [{"word": "Hello", "start_time": 0.1,
                                                               "end_time": 0.4}]})

    from tests.json_server import start_app

    async def run() -> Any:
        app = web.Application()
        app.router.add_post("/dev/captioned_speech", kokoro_like)
        runner, url = await start_app(app)
        try:
            return await fetch_timings(url, "k", "m", "v", "Hello.", 1.0, timeout_s=10), threading.current_thread()
        finally:
            await runner.cleanup()

    timings, loop_thread = asyncio.run(run())
    assert [w.text for w in timings.words] == ["Hello"]
    assert parsed_on and parsed_on[0] is not loop_thread
