"""The built-in speech server over real HTTP on 127.0.0.1 (ServerThread + aiohttp client): routes, errors,
formats, shaping and the per-request records."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from tests.replay_server import record_ended, speech_body as _body
from voicegui.formats import CONTENT_TYPES, FORMATS
from voicegui.openai_models import SPEECH_MODELS as OPENAI_MODELS, SPEECH_VOICES as OPENAI_VOICES
from voicegui.server.engines.base import Engine
from voicegui.server.shaping import Shaping
from voicegui.server.thread import ServerThread


async def _post(url: str, body, headers=None) -> tuple[int, dict | bytes, str]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/audio/speech", json=body, headers=headers) as r:
            ctype = r.headers.get("Content-Type", "")
            data = await r.json() if ctype.startswith("application/json") else await r.read()
            return r.status, data, ctype


def test_engine_satisfies_protocol(engine):
    assert isinstance(engine, Engine)
    assert engine.sample_rate == 24000 and abs(engine.duration_s - 2.0) < 0.01


async def test_models_and_voices(server):
    async with aiohttp.ClientSession() as s:
        async with s.get(server.base_url + "/models") as r:
            models = await r.json()
        async with s.get(server.base_url + "/audio/voices") as r:
            voices = await r.json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == list(OPENAI_MODELS)
    assert all(m["object"] == "model" and m["owned_by"] for m in models["data"])
    assert [v["id"] for v in voices["voices"]] == list(OPENAI_VOICES)
    assert set(voices["voices"][0]) == {"id", "name", "language", "engine"}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_format_streams_with_its_content_type(server, fmt):
    status, data, ctype = await _post(server.base_url, _body(response_format=fmt))
    assert status == 200 and ctype == CONTENT_TYPES[fmt]
    assert len(data) > 1000
    rec = await record_ended(server)
    assert rec.completed and not rec.client_disconnected and rec.bytes_sent == len(data)
    assert rec.format == fmt
    if fmt == "pcm":
        assert len(data) == 2 * 48000


async def test_default_format_is_mp3(server):
    status, data, ctype = await _post(server.base_url, _body(response_format=None))
    assert status == 200 and ctype == "audio/mpeg" and data[:3] == b"ID3"


@pytest.mark.parametrize("over, status, param, code", [
    ({"model": "tts-9"}, 404, "model", "model_not_found"),
    ({"voice": "nobody"}, 404, "voice", "voice_not_found"),
    ({"response_format": "ogg"}, 400, "response_format", "invalid_value"),
    ({"speed": 0.1}, 400, "speed", "invalid_value"),
    ({"speed": 4.5}, 400, "speed", "invalid_value"),
    ({"speed": "fast"}, 400, "speed", "invalid_value"),
    ({"input": ""}, 400, "input", "empty_string"),
    ({"input": "   "}, 400, "input", "empty_string"),
    ({"input": "a" * 4097}, 400, "input", "string_above_max_length"),
    ({"model": None}, 400, "model", "missing_required_parameter"),
    ({"voice": None}, 400, "voice", "missing_required_parameter"),
    ({"instructions": 5}, 400, "instructions", "invalid_value"),
    ({"stream_format": "websocket"}, 400, "stream_format", "invalid_value"),
])
async def test_bad_requests_get_openai_errors(server, over, status, param, code):
    got, data, ctype = await _post(server.base_url, _body(**over))
    assert got == status and ctype.startswith("application/json")
    err = data["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["code"] == code and err["message"]


async def test_limits_are_inclusive(server):
    for over in ({"input": "a" * 4096}, {"speed": 0.25}, {"speed": 4}):
        status, _, _ = await _post(server.base_url, _body(**over))
        assert status == 200, over


async def test_body_that_is_not_json(server):
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", data=b"{nope",
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["type"] == "invalid_request_error"


async def test_token_is_required_when_set(engine):
    with ServerThread(engine, token="s3cret") as srv:
        status, data, _ = await _post(srv.base_url, _body())
        assert status == 401 and data["error"]["code"] == "missing_api_key"
        status, data, _ = await _post(srv.base_url, _body(), {"Authorization": "Bearer wrong"})
        assert status == 401 and data["error"]["code"] == "invalid_api_key"
        status, data, _ = await _post(srv.base_url, _body(), {"Authorization": "Bearer s3cret"})
        assert status == 200 and len(data) == 96000
        async with aiohttp.ClientSession() as s:
            async with s.get(srv.base_url + "/models") as r:
                assert r.status == 401


async def test_error_status_shaping(server):
    for code in (429, 500, 503):
        server.shaping = Shaping(error_status=code)
        status, data, _ = await _post(server.base_url, _body())
        assert status == code and data["error"]["message"]
    server.shaping = Shaping()
    status, _, _ = await _post(server.base_url, _body())
    assert status == 200


async def test_throughput_paces_by_audio_time(server):
    # 2 s of audio at 2x real time: ~1 s. Bounds are loose on purpose (shared CI machines).
    server.shaping = Shaping(throughput_x=2.0)
    arrivals: list[tuple[float, int]] = []
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
            async for chunk in r.content.iter_any():
                arrivals.append((time.monotonic() - t0, len(chunk)))
    elapsed = time.monotonic() - t0
    assert 0.8 < elapsed < 3.0
    # Half the bytes arrive in the first half of the time or so, not all at the end.
    half_bytes = sum(n for _, n in arrivals) / 2
    got = 0
    for t, n in arrivals:
        got += n
        if got >= half_bytes:
            assert t < 0.75 * elapsed
            break
    rec = await record_ended(server)
    assert rec.completed
    assert rec.first_byte_sent_at - rec.received_at < 0.3
    assert rec.ended_at - rec.first_byte_sent_at > 0.7


@pytest.mark.parametrize("fmt", FORMATS)
async def test_first_write_happens_long_before_the_end(server, fmt):
    server.shaping = Shaping(throughput_x=4.0)
    status, _, _ = await _post(server.base_url, _body(response_format=fmt))
    assert status == 200
    rec = await record_ended(server)
    # The first body bytes leave at once; the whole 2 s clip at 4x takes ~0.5 s after that.
    assert rec.first_byte_sent_at - rec.received_at < 0.4
    assert rec.ended_at - rec.first_byte_sent_at > 0.3


async def test_first_byte_delay_comes_before_headers(server):
    server.shaping = Shaping(first_byte_delay_s=0.4)
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
            headers_after = time.monotonic() - t0
            await r.read()
    assert headers_after >= 0.35


async def test_jitter_is_relative_to_the_schedule(server):
    # ~94 writes with up to 50 ms jitter each: cumulative jitter would add ~2.3 s to the ~1 s schedule.
    server.shaping = Shaping(throughput_x=2.0, jitter_s=0.05, seed=3)
    t0 = time.monotonic()
    status, data, _ = await _post(server.base_url, _body())
    elapsed = time.monotonic() - t0
    assert status == 200 and len(data) == 96000
    assert 0.9 < elapsed < 2.0


async def test_jitter_delays_but_delivers_everything(server):
    server.shaping = Shaping(jitter_s=0.005, write_bytes=4096, seed=1)
    status, data, _ = await _post(server.base_url, _body())
    assert status == 200 and len(data) == 96000


async def test_cut_after_bytes_gives_an_incomplete_body(server):
    server.shaping = Shaping(cut_after_bytes=5000)
    got = bytearray()
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                async for chunk in r.content.iter_any():
                    got += chunk
    assert len(got) == 5000
    rec = await record_ended(server)
    assert rec.cut and rec.bytes_sent == 5000 and not rec.completed and not rec.client_disconnected


async def test_cut_at_zero_bytes(server):
    server.shaping = Shaping(cut_after_bytes=0)
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


async def test_client_disconnect_is_recorded_quietly(server, caplog):
    caplog.set_level(logging.WARNING)
    server.shaping = Shaping(throughput_x=1.0)
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
            await r.content.readexactly(2000)
            r.close()  # drop the connection mid-stream
    t_closed = time.monotonic()
    rec = await record_ended(server)
    assert rec.client_disconnected and not rec.completed
    assert rec.ended_at - t_closed < 0.5  # noticed promptly, not at the end of the 2 s clip
    assert rec.bytes_sent < 96000
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_disconnect_during_first_byte_delay(server):
    server.shaping = Shaping(first_byte_delay_s=5.0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as s:
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(server.base_url + "/audio/speech", json=_body()) as r:
                await r.read()
    rec = await record_ended(server)
    assert rec.client_disconnected and rec.first_byte_sent_at is None
    assert rec.ended_at - rec.received_at < 2.0


async def test_unknown_route_is_json_404(server):
    async with aiohttp.ClientSession() as s:
        async with s.get(server.base_url + "/nothing") as r:
            assert r.status == 404 and "error" in await r.json()


def test_shaping_validates():
    with pytest.raises(ValueError):
        Shaping(throughput_x=0)
    with pytest.raises(ValueError):
        Shaping(error_status=200)
    with pytest.raises(ValueError):
        Shaping(write_bytes=0)


class _ScriptedEngine:
    """A minimal engine: `fail_at` blocks in, raise EngineError; records whether its generator closed."""

    name = "scripted"
    sample_rate = 16000

    def __init__(self, blocks: int, fail_at: int | None = None, delay_s: float = 0.0) -> None:
        self.blocks, self.fail_at, self.delay_s = blocks, fail_at, delay_s
        self.closed = 0

    def models(self) -> list[str]:
        return ["m"]

    def voices(self):
        from voicegui.server.engines.base import VoiceInfo

        return [VoiceInfo("v", "V", "en", self.name)]

    async def synthesize(self, text, voice, speed):
        import numpy as np

        from voicegui.server.engines.base import EngineError

        try:
            for i in range(self.blocks):
                if i == self.fail_at:
                    raise EngineError("synthesis failed")
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                yield np.full(320, 1000, dtype=np.int16)  # int16 blocks are accepted too
        finally:
            self.closed += 1


async def test_engine_error_before_audio_is_a_500():
    eng = _ScriptedEngine(5, fail_at=0)
    with ServerThread(eng) as srv:
        status, data, _ = await _post(srv.base_url, {"model": "m", "voice": "v", "input": "x",
                                                     "response_format": "pcm"})
        assert status == 500 and "synthesis failed" in data["error"]["message"]
    assert eng.closed == 1


async def test_engine_error_mid_stream_cuts_the_body():
    eng = _ScriptedEngine(50, fail_at=10)
    with ServerThread(eng) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.base_url + "/audio/speech", json={"model": "m", "voice": "v", "input": "x",
                                                                    "response_format": "pcm"}) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
        rec = await record_ended(srv)
        assert rec.error == "synthesis failed" and not rec.completed
    assert eng.closed == 1


async def test_engine_generator_is_closed_when_the_client_leaves():
    eng = _ScriptedEngine(500, delay_s=0.02)  # 10 s of audio produced in real time
    with ServerThread(eng) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.base_url + "/audio/speech", json={"model": "m", "voice": "v", "input": "x",
                                                                    "response_format": "flac"}) as r:
                await r.content.readexactly(100)
                r.close()
        rec = await record_ended(srv)
        assert rec.client_disconnected
        deadline = time.monotonic() + 2
        while eng.closed == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert eng.closed == 1


def test_server_thread_binds_loopback_and_stops(engine):
    import socket

    srv = ServerThread(engine)
    assert srv.base_url.startswith("http://127.0.0.1:") and srv.token is None and srv.native_id
    with socket.create_connection(("127.0.0.1", srv.port), timeout=2):
        pass
    srv.stop()
    srv.stop()  # twice is fine
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=2)


async def test_raw_pcm_says_its_sample_rate(server):
    # Raw pcm carries no header: clients that can read it (voicegui does) need not assume 24 kHz.
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body(response_format="pcm")) as r:
            await r.read()
            assert r.status == 200 and r.headers["X-Sample-Rate"] == "24000"
        async with s.post(server.base_url + "/audio/speech", json=_body(response_format="wav")) as r:
            await r.read()
            assert "X-Sample-Rate" not in r.headers  # a container says it itself
