"""The built-in server's `stream_format: "sse"` over real HTTP on 127.0.0.1: the same audio as the plain body,
as speech.audio.delta events ending in speech.audio.done, and an engine failure as an error event. The events
are read here with a few lines of our own (not voicegui.stream.sse), so the server is checked independently of
the client."""

from __future__ import annotations

import base64
import json

import aiohttp
import numpy as np
import pytest

from tests.replay_server import record_ended, speech_body as _body
from voicegui.formats import FORMATS
from voicegui.server.engines.base import EngineError, VoiceInfo
from voicegui.server.shaping import Shaping
from voicegui.server.thread import ServerThread


async def _post(url: str, body) -> tuple[int, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/audio/speech", json=body) as r:
            return r.status, await r.read(), dict(r.headers)


def _events(raw: bytes) -> list[dict]:
    """The JSON of each `data:` event in a body whose events are single-line, LF-separated."""
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        (line,) = block.split("\n")
        assert line.startswith("data: ")
        out.append(json.loads(line[len("data: "):]))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sse_carries_the_same_audio_as_the_plain_body(server, fmt):
    status, plain, plain_headers = await _post(server.base_url, _body(response_format=fmt))
    assert status == 200
    status, raw, headers = await _post(server.base_url, _body(response_format=fmt, stream_format="sse"))
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = _events(raw)
    deltas, done = events[:-1], events[-1]
    assert len(deltas) > 1 and all(e["type"] == "speech.audio.delta" for e in deltas)
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    if fmt == "opus":
        # Each Ogg stream gets a random serial number (and so other page CRCs): the same pages, other bytes.
        assert len(audio) == len(plain) and audio.count(b"OggS") == plain.count(b"OggS") > 2
    else:
        assert audio == plain
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] == len("Hello there.") and usage["output_tokens"] == 100  # 2 s in 20 ms units
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    if fmt == "pcm":
        assert headers["X-Sample-Rate"] == plain_headers["X-Sample-Rate"] == "24000"
    rec = await record_ended(server, -1)
    assert rec.completed and rec.bytes_sent == len(raw)


async def test_audio_and_absent_stream_format_are_the_plain_body(server):
    _, absent, _ = await _post(server.base_url, _body())
    status, audio, headers = await _post(server.base_url, _body(stream_format="audio"))
    assert status == 200 and headers["Content-Type"] == "audio/pcm" and audio == absent


async def test_unknown_stream_format_is_refused_by_name(server):
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=_body(stream_format="websocket")) as r:
            assert r.status == 400
            err = (await r.json())["error"]
    assert err["param"] == "stream_format" and "'audio', 'sse'" in err["message"]


async def test_shaping_applies_to_the_event_bytes(engine):
    # A cut after 1000 bytes is a cut inside the events: no done event, the body ends early.
    with ServerThread(engine, shaping=Shaping(cut_after_bytes=1000)) as srv:
        async with aiohttp.ClientSession() as s:
            async with s.post(srv.base_url + "/audio/speech", json=_body(stream_format="sse")) as r:
                assert r.status == 200
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.read()
        rec = await record_ended(srv, -1)
        assert rec.cut and rec.bytes_sent == 1000


class _FailingEngine:
    """Yields `good` blocks of a tone, then raises EngineError."""

    name = "failing"
    sample_rate = 16000

    def __init__(self, good: int) -> None:
        self.good = good

    def models(self) -> list[str]:
        return ["m"]

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("v", "V", "en", self.name)]

    async def synthesize(self, text, voice, speed):
        for _ in range(self.good):
            yield np.full(320, 1000, dtype=np.int16)
        raise EngineError("synthesis failed")


async def test_engine_failure_mid_stream_is_an_error_event():
    with ServerThread(_FailingEngine(good=5)) as srv:
        status, raw, _ = await _post(srv.base_url, {"model": "m", "voice": "v", "input": "x",
                                                    "response_format": "pcm", "stream_format": "sse"})
        assert status == 200
        events = _events(raw)  # a whole body: the stream ended cleanly after the error event
        assert [e["type"] for e in events] == ["speech.audio.delta"] * 5 + ["speech.audio.error"]
        assert events[-1]["error"]["message"] == "The speech engine failed: synthesis failed"
        rec = await record_ended(srv, -1)
        assert rec.error == "synthesis failed" and not rec.completed
