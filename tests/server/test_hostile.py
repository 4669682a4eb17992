"""Hostile clients against the real built-in server on 127.0.0.1: other web pages (cross-origin POSTs, DNS
rebinding through a foreign Host header), bodies built to break the JSON parser or the engines, text with
nothing to say, and a slowloris that sends its headers one byte a second. Each gets a clear OpenAI-shaped
error or is cut off, and the server keeps serving everyone else."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import aiohttp
import pytest

from tests.replay_server import speech_body as _speech_json
from tests.server import clip
from voicegui.server.engines.replay import ReplayEngine
from voicegui.server.thread import ServerThread


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> ReplayEngine:
    return ReplayEngine(clip.write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", 0.5))


async def _raw_post(url: str, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/audio/speech", data=data,
                          headers={"Content-Type": "application/json", **(headers or {})}) as r:
            return r.status, await r.read(), r.headers.get("Content-Type", "")


def _openai_error(status: int, body: bytes, ctype: str) -> dict:
    """The OpenAI-shaped error in `body`, after checking it is one (and carries no traceback)."""
    assert ctype.startswith("application/json"), (status, ctype, body[:300])
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and "Traceback" not in err["message"]
    assert len(err["message"]) < 400, err["message"]  # one sentence, not the attacker's payload echoed back
    return err


async def _still_serves(srv: ServerThread) -> None:
    status, body, _ = await _raw_post(srv.base_url, json.dumps(_speech_json()).encode())
    assert status == 200 and len(body) == 2 * 12000


# --- other web pages: cross-site requests and DNS rebinding ------------------------------------------------

async def _request(method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, url, data=data, headers=headers) as r:
            return r.status, await r.read(), r.headers.get("Content-Type", "")


async def test_cross_origin_post_is_refused(engine):
    with ServerThread(engine, token="tok") as srv:
        body = json.dumps(_speech_json()).encode()
        # What a page on evil.example can send without a preflight: a "simple" text/plain POST. Even with the
        # right token (a page that guessed or stole it) the browser's Origin gives it away.
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{srv.port + 1}",
                       f"https://127.0.0.1:{srv.port}"):
            for headers in ({"Content-Type": "text/plain", "Origin": origin},
                            {"Content-Type": "text/plain", "Origin": origin, "Authorization": "Bearer tok"}):
                status, data, ctype = await _request("POST", srv.base_url + "/audio/speech", headers, body)
                assert status == 403, (origin, status)
                assert _openai_error(status, data, ctype)["code"] == "cross_origin_refused"
            status, data, ctype = await _request("GET", srv.base_url + "/models", {"Origin": origin})
            assert status == 403
        status, data, ctype = await _request("OPTIONS", srv.base_url + "/audio/speech",
                                             {"Origin": "http://evil.example",
                                              "Access-Control-Request-Method": "POST"})
        assert status == 403 and "access-control-allow-origin" not in ctype.lower()
        assert srv.records == []  # no speech request got as far as the engine
        # The server's own origin is not foreign.
        status, data, _ = await _request("POST", srv.base_url + "/audio/speech",
                                         {"Origin": f"http://127.0.0.1:{srv.port}", "Authorization": "Bearer tok",
                                          "Content-Type": "application/json"}, body)
        assert status == 200 and len(data) == 2 * 12000


async def test_foreign_host_header_is_refused(engine):
    with ServerThread(engine) as srv:
        url = srv.base_url + "/audio/voices"
        # DNS rebinding: evil.example now resolves to 127.0.0.1, but the browser still says whom it asks.
        for host in ("evil.example", f"evil.example:{srv.port}", f"127.0.0.1:{srv.port + 1}", "127.0.0.1",
                     f"localhost.evil.example:{srv.port}", f"127.0.0.1.nip.io:{srv.port}", ""):
            status, data, ctype = await _request("GET", url, {"Host": host})
            assert status == 421, (host, status)
            assert _openai_error(status, data, ctype)["code"] == "invalid_host"
            status, data, ctype = await _request("POST", srv.base_url + "/audio/speech",
                                                 {"Host": host, "Content-Type": "application/json"},
                                                 json.dumps(_speech_json()).encode())
            assert status == 421, (host, status)
        for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}", f"[::1]:{srv.port}",
                     f"LOCALHOST:{srv.port}"):
            status, data, _ = await _request("GET", url, {"Host": host})
            assert status == 200, host
        assert srv.records == []


def test_openai_sdk_passes_the_checks(engine):
    import openai

    with ServerThread(engine, token="tok") as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="tok", max_retries=0)
        assert [m.id for m in client.models.list().data]
        audio = client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", response_format="pcm")
        assert len(audio.content) == 2 * 12000


# --- bodies that break parsers ------------------------------------------------------------------------------

async def test_deeply_nested_json_is_a_400(server):
    for data in (b"[" * 200_000, b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
        status, body, ctype = await _raw_post(server.base_url, data)
        assert status == 400, body[:300]
        assert "nested" in _openai_error(status, body, ctype)["message"]
    await _still_serves(server)


async def test_number_with_5000_digits_is_a_400(server):
    for digits in ("9" * 5000, "1" * 4000):  # over and under Python's int-to-str limit (4300)
        data = json.dumps(_speech_json(speed=0)).encode().replace(b'"speed": 0', b'"speed": ' + digits.encode())
        status, body, ctype = await _raw_post(server.base_url, data)
        assert status == 400, body[:300]
        err = _openai_error(status, body, ctype)
        assert digits[:50] not in err["message"]
    # A float that big is inf, also out of range.
    data = json.dumps(_speech_json(speed=0)).encode().replace(b'"speed": 0', b'"speed": 1' + b"0" * 5000 + b".5")
    status, body, ctype = await _raw_post(server.base_url, data)
    assert status == 400 and _openai_error(status, body, ctype)["param"] == "speed"
    await _still_serves(server)


async def test_huge_strings_are_not_echoed_back(server):
    for over in ({"model": "m" * 100_000}, {"voice": "v" * 100_000}, {"response_format": "f" * 100_000},
                 {"stream_format": "s" * 100_000}):
        status, body, ctype = await _raw_post(server.base_url, json.dumps(_speech_json(**over)).encode())
        assert status in (400, 404)
        _openai_error(status, body, ctype)


async def test_unknown_charset_is_a_400(server):
    status, body, ctype = await _raw_post(server.base_url, json.dumps(_speech_json()).encode(),
                                          {"Content-Type": "application/json; charset=no-such-charset"})
    assert status == 400 and "charset" in _openai_error(status, body, ctype)["message"]


async def test_lone_surrogate_for_espeak_is_a_400(espeak_engine):
    with ServerThread(espeak_engine) as srv:
        # json.dumps writes the surrogate as the escape \ud800, which json.loads turns back into a lone one.
        for text in ("Hello \ud800 there.", "\udfff", "a\udc80b"):
            data = json.dumps({"model": "espeak-ng", "voice": "espeak:en-us", "input": text,
                               "response_format": "wav"}).encode()
            status, body, ctype = await _raw_post(srv.base_url, data)
            assert status == 400, body[:300]
            err = _openai_error(status, body, ctype)
            assert err["param"] == "input" and "surrogate" in err["message"]
        status, body, _ = await _raw_post(srv.base_url, json.dumps(
            {"model": "espeak-ng", "voice": "espeak:en-us", "input": "Still here.", "response_format": "wav"}).encode())
        assert status == 200 and body[:4] == b"RIFF" and len(body) > 44 + 2 * 2400


@pytest.mark.parametrize("text", ["...!!!", "\x01\x02\x03", "?! - , ;", "\u200b\u200b", "\x00 \x07 ."])
async def test_nothing_speakable_is_a_400(espeak_engine, text):
    with ServerThread(espeak_engine) as srv:
        data = json.dumps({"model": "espeak-ng", "voice": "espeak:en-us", "input": text,
                           "response_format": "wav"}).encode()
        status, body, ctype = await _raw_post(srv.base_url, data)
        assert status == 400, (status, body[:100])
        err = _openai_error(status, body, ctype)
        assert err["param"] == "input" and "nothing to speak" in err["message"]


async def test_symbols_and_digits_are_speakable(espeak_engine):
    with ServerThread(espeak_engine) as srv:
        for text in ("42", "$ + %"):
            data = json.dumps({"model": "espeak-ng", "voice": "espeak:en-us", "input": text,
                               "response_format": "wav"}).encode()
            status, body, _ = await _raw_post(srv.base_url, data)
            assert status == 200 and len(body) > 44 + 2 * 2400, text


# --- slowloris ------------------------------------------------------------------------------------------------

def _slowloris(port: int, give_up_s: float) -> tuple[bool, float]:
    """Send a request's headers one byte a second; return (cut off by the server, seconds it took)."""
    request = b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Padding: " % port + b"a" * 200
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.settimeout(1.0)
        for byte in request:
            if time.monotonic() - t0 > give_up_s:
                return False, time.monotonic() - t0
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(4096) == b"":
                    return True, time.monotonic() - t0
            except TimeoutError:
                continue  # nothing from the server: it is still waiting for us, send the next byte
            except ConnectionError:
                return True, time.monotonic() - t0
    return False, time.monotonic() - t0


async def test_slowloris_is_cut_off_and_others_are_served(engine):
    with ServerThread(engine, read_timeout_s=3.0) as srv:
        task = asyncio.ensure_future(asyncio.to_thread(_slowloris, srv.port, 60.0))
        await asyncio.sleep(1.5)
        assert not task.done()
        await _still_serves(srv)  # while the slow client is connected
        cut, took = await task
        assert cut, f"the slow client was still connected after {took:.0f} s"
        assert 2.0 < took < 30.0
        await _still_serves(srv)


def test_default_read_timeout_is_bounded(engine):
    from voicegui.server.app import READ_TIMEOUT_S

    assert 10.0 <= READ_TIMEOUT_S <= 30.0
    with ServerThread(engine) as srv:
        assert srv.read_timeout_s == READ_TIMEOUT_S


async def test_slow_body_is_cut_off(engine):
    with ServerThread(engine, read_timeout_s=2.0) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        try:
            writer.write(b"POST /v1/audio/speech HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{" % srv.port)
            await writer.drain()
            t0 = time.monotonic()
            answer = b""
            while b'"error"' not in answer and time.monotonic() - t0 < 30:
                more = await asyncio.wait_for(reader.read(4096), 30)
                if not more:
                    break
                answer += more
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b'"error"' in answer
        finally:
            writer.close()
        await _still_serves(srv)
