"""fetch_speech with stream_format "sse" over real HTTP on 127.0.0.1: against the built-in server (the same
audio as a plain fetch, one on_chunk per event, the usage) and against small aiohttp servers that send events
the way other servers do or should not (split lines, an error event, no done event, bad base64, a huge line,
plain audio instead of events)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest
from aiohttp import web

from tests.stream.fetching import Collector, fetch as _fetch, fetch_fails as _fail, speech_request
from voicegui.formats import FORMATS
from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech
from voicegui.stream.sse import MAX_EVENT_BYTES


def _req(base_url: str, **over) -> SpeechRequest:
    return speech_request(base_url, **{"stream_format": "sse", **over})


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "opus"])  # opus: a random Ogg serial per stream
async def test_builtin_server_sse_gives_the_same_audio_as_a_plain_fetch(server, fmt):
    plain_total, _, plain = await _fetch(_req(server.base_url, response_format=fmt, stream_format="audio"))
    total, marks, col = await _fetch(_req(server.base_url, response_format=fmt))
    assert col.data == plain.data and total == plain_total == len(col.data)
    assert marks.response_headers["content-type"] == "text/event-stream" and not marks.sse_ignored
    assert marks.usage == {"input_tokens": 12, "output_tokens": 100, "total_tokens": 112}
    assert marks.first_byte is not None and marks.headers is not None


async def test_sse_is_asked_for_in_the_body_and_audio_is_not_mentioned(local_app):
    seen: list[tuple[dict, str]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append((await request.json(), request.headers.get("Accept", "")))
        return web.Response(body=b"\x00\x00" * 10, content_type="audio/pcm")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    url = await local_app(app)
    await _fetch(_req(url, stream_format="audio"))
    await _fetch(_req(url))
    (plain, plain_accept), (sse, sse_accept) = seen
    assert "stream_format" not in plain and plain_accept != "text/event-stream"
    assert sse["stream_format"] == "sse" and sse_accept == "text/event-stream"


def _delta(audio: bytes, field: str = "audio") -> bytes:
    return b"data: " + json.dumps({"type": "speech.audio.delta", field: base64.b64encode(audio).decode()}).encode() \
        + b"\n\n"


DONE = b'data: {"type":"speech.audio.done","usage":{"input_tokens":4,"output_tokens":9,"total_tokens":13}}\n\n'


async def _events_server(local_app, pieces: list[bytes], content_type: str = "text/event-stream",
                         pause_s: float = 0.0) -> str:
    """A server that answers every speech request with `pieces`, each its own write (and flush)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
            if pause_s:
                await asyncio.sleep(pause_s)  # lets each write leave as its own packet; correctness does not need it
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    return await local_app(app)


async def test_lines_split_anywhere_crlf_comments_and_multiline_data(local_app):
    body = (b": keep-alive\r\n\r\n" + _delta(b"\x01\x00" * 50).replace(b"\n", b"\r\n")
            + b"event: speech.audio.delta\ndata: {\"audio_data\":\ndata: \"" + base64.b64encode(b"\x02\x00" * 30)
            + b"\"}\n\n" + DONE.replace(b"usage", b"token_usage"))
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]  # splits inside CRLFs, field names, base64
    total, marks, col = await _fetch(_req(await _events_server(local_app, pieces, pause_s=0.001)))
    assert col.data == b"\x01\x00" * 50 + b"\x02\x00" * 30 and total == 160
    assert marks.usage == {"input_tokens": 4, "output_tokens": 9, "total_tokens": 13}


async def test_each_event_is_one_on_chunk_call_even_when_events_arrive_together(local_app):
    body = b"".join(_delta(bytes([i]) * 20) for i in range(1, 6)) + DONE
    _, _, col = await _fetch(_req(await _events_server(local_app, [body])))
    assert col.chunks == [bytes([i]) * 20 for i in range(1, 6)]


async def test_an_error_event_before_audio_is_a_fetch_error_quoting_the_server(local_app):
    error = b'data: {"type":"speech.audio.error","error":{"message":"The model is overloaded"}}\n\n'
    url = await _events_server(local_app, [error])
    exc, _, col = await _fail(_req(url))
    assert exc.kind == "server" and exc.status == 200 and col.chunks == []
    assert str(exc) == (f"The server at {url} reported an error in the audio stream after 0 bytes of audio. "
                        "The server said: The model is overloaded.")


async def test_an_error_event_after_audio_is_a_cut_after_that_audio(local_app):
    error = b'data: {"type":"speech.audio.error","error":{"message":"engine died"}}\n\n'
    url = await _events_server(local_app, [_delta(b"\x01\x00" * 100) + error + _delta(b"\x02\x00")])
    exc, _, col = await _fail(_req(url))
    assert exc.kind == "cut" and exc.bytes_received == 200 and col.data == b"\x01\x00" * 100
    assert "engine died" in str(exc)


async def test_a_stream_without_the_done_event_is_reported_cut(local_app):
    url = await _events_server(local_app, [_delta(b"\x01\x00" * 100), _delta(b"\x02\x00" * 100)])
    exc, marks, col = await _fail(_req(url))
    assert exc.kind == "cut" and exc.bytes_received == 400 and len(col.data) == 400
    assert "no speech.audio.done event came" in str(exc) and marks.usage is None


@pytest.mark.parametrize("bad, words", [
    (b'data: {"type":"speech.audio.delta","audio":"not base64!"}\n\n', "not valid base64"),
    (b'data: {"type":"speech.audio.delta","audio":\n\n', "not JSON"),
])
async def test_bad_events_are_one_sentence_and_the_audio_before_them_plays(local_app, bad, words):
    url = await _events_server(local_app, [_delta(b"\x01\x00" * 10), bad, DONE])
    exc, _, col = await _fail(_req(url))
    assert exc.kind == "protocol" and words in str(exc) and "--stream-format audio" in str(exc)
    assert col.data == b"\x01\x00" * 10 and exc.bytes_received == 20


async def test_a_huge_line_is_refused_once_past_the_bound(local_app):
    big = b"A" * (1024 * 1024)
    pieces = [b"data: "] + [big] * (MAX_EVENT_BYTES // len(big) + 4)
    exc, _, col = await _fail(_req(await _events_server(local_app, pieces)))
    assert exc.kind == "protocol" and "longer than 4 MiB" in str(exc) and col.chunks == []


async def test_plain_audio_instead_of_events_plays_and_says_so(local_app, caplog):
    url = await _events_server(local_app, [b"\x01\x00" * 100], content_type="audio/pcm")
    with caplog.at_level(logging.WARNING, logger="voicegui.stream.fetch"):
        total, marks, col = await _fetch(_req(url))
    assert total == 200 and col.data == b"\x01\x00" * 100 and marks.sse_ignored and marks.usage is None
    assert any("ignored stream_format 'sse'" in r.getMessage() and "audio/pcm" in r.getMessage()
               for r in caplog.records)


async def test_an_unknown_stream_format_is_a_programming_error(server):
    with pytest.raises(ValueError):
        await fetch_speech(_req(server.base_url, stream_format="websocket"), FetchMarks(), Collector())


@pytest.mark.parametrize("error", [
    {"message": "Unsupported value: 'stream_format' does not support 'sse' with this model.", "type":
     "invalid_request_error", "param": "stream_format", "code": "unsupported_value"},
    {"message": "stream_format sse is not supported for tts-1", "type": "invalid_request_error"},
])
async def test_a_model_that_refuses_sse_names_the_fix(local_app, error):
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"error": error}, status=400)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", handler)
    url = await local_app(app)
    exc, _, _ = await _fail(_req(url))
    assert exc.kind == "bad_request" and exc.status == 400
    assert "refused stream format 'sse' for model 'tts-1'" in str(exc) and "--stream-format audio" in str(exc)
    assert error["message"] in str(exc)
    # The same refusal of a plain request is the ordinary message.
    exc, _, _ = await _fail(_req(url, stream_format="audio"))
    assert "refused the request as invalid" in str(exc)


async def test_endless_events_without_audio_are_refused(local_app):
    from voicegui.stream.sse import MAX_BYTES_WITHOUT_AUDIO_EVENTS

    keepalive = b": keep-alive\n" * 4096 + b'data: {"type":"speech.audio.progress"}\n\n'
    pieces = [_delta(b"\x01\x00")] + [keepalive] * (MAX_BYTES_WITHOUT_AUDIO_EVENTS // len(keepalive) + 2)
    exc, _, col = await _fail(_req(await _events_server(local_app, pieces)))
    assert exc.kind == "protocol" and "of events without any audio in them" in str(exc)
    assert col.data == b"\x01\x00"
