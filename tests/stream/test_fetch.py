"""fetch_speech against the real built-in server on 127.0.0.1: streaming, marks, chunking, cancellation,
and every failure mapped to a FetchError with a clear message."""

from __future__ import annotations

import asyncio
import socket
import time
import wave

import pytest

from tests.replay_server import record_ended as _record_ended
from tests.stream.fetching import Collector, fetch as _fetch, fetch_fails as _fail, speech_request as _req
from voicegui.server.encode import FORMATS
from voicegui.server.shaping import Shaping
from voicegui.server.thread import ServerThread
from voicegui.stream.fetch import FetchMarks, fetch_speech

PCM_BYTES = 2 * 48000  # 2 s at 24 kHz, 16-bit mono


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_format_arrives_whole(server, engine, fmt):
    engine_path = engine.path
    total, marks, col = await _fetch(_req(server.base_url, response_format=fmt))
    rec = await _record_ended(server)
    assert rec.completed and total == rec.bytes_sent == len(col.data)
    assert marks.request_sent <= marks.headers <= marks.first_byte
    if fmt == "pcm":
        with wave.open(str(engine_path), "rb") as w:
            assert col.data == w.readframes(w.getnframes())  # replayed losslessly


async def test_bytes_are_handed_on_as_they_arrive(server):
    # Measured: iter_bytes(None) passes each socket read through; nothing is held back.
    server.shaping = Shaping(throughput_x=2.0, write_bytes=1024)
    t0 = time.monotonic()
    total, marks, col = await _fetch(_req(server.base_url))
    elapsed = time.monotonic() - t0
    assert total == PCM_BYTES
    assert 0.8 < elapsed < 3.0
    assert len(col.chunks) >= 50  # ~94 server writes; a few may coalesce in the socket
    assert max(len(c) for c in col.chunks) <= 4096
    assert marks.first_byte - t0 < 0.3 * elapsed
    rec = await _record_ended(server)
    assert rec.first_byte_sent_at <= marks.first_byte


async def test_chunk_bytes_regroups(server):
    total, _, col = await _fetch(_req(server.base_url, chunk_bytes=10000))
    sizes = [len(c) for c in col.chunks]
    assert total == PCM_BYTES and all(s == 10000 for s in sizes[:-1]) and sizes[-1] == PCM_BYTES % 10000


async def test_on_chunk_is_awaited_one_at_a_time(server):
    active = 0
    peak = 0
    count = 0

    async def slow(chunk: bytes) -> None:
        nonlocal active, peak, count
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        count += 1
        active -= 1

    total = await fetch_speech(_req(server.base_url), FetchMarks(None, None, None), slow)
    assert total == PCM_BYTES and peak == 1 and count >= 1


async def test_bad_key(engine):
    with ServerThread(engine, token="right") as srv:
        err, _, _ = await _fail(_req(srv.base_url, api_key="wrong"))
        assert err.kind == "auth" and err.status == 401
        assert srv.base_url in str(err) and "API key" in str(err)
        total, _, _ = await _fetch(_req(srv.base_url, api_key="right"))
        assert total == PCM_BYTES


async def test_unknown_model_and_voice(server):
    err, _, _ = await _fail(_req(server.base_url, model="tts-9"))
    assert err.kind == "not_found" and err.status == 404
    assert "model 'tts-9'" in str(err) and "does not exist" in str(err)  # ours, then the server's words
    err, _, _ = await _fail(_req(server.base_url, voice="nobody"))
    assert err.kind == "not_found" and "voice 'nobody'" in str(err)


@pytest.mark.parametrize("over", [{"speed": 9.0}, {"response_format": "ogg"}, {"text": "a" * 4097}])
async def test_bad_request(server, over):
    err, _, _ = await _fail(_req(server.base_url, **over))
    assert err.kind == "bad_request" and err.status == 400 and err.server_message
    assert err.server_message in str(err)


@pytest.mark.parametrize("status, kind", [(429, "rate_limit"), (500, "server"), (503, "server"),
                                          (418, "http")])
async def test_shaped_error_status(server, status, kind):
    server.shaping = Shaping(error_status=status)
    err, _, col = await _fail(_req(server.base_url))
    assert err.kind == kind and err.status == status and f"HTTP {status}" in str(err)
    assert col.data == b""


async def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on that port now.
    url = f"http://127.0.0.1:{port}/v1"
    err, _, _ = await _fail(_req(url))
    assert err.kind == "connection" and err.status is None
    assert url in str(err) and "refused" in str(err).lower()


async def test_timeout_waiting_for_headers(server):
    # Shaping's first-byte delay comes before the headers, so this is the SDK's request timeout.
    server.shaping = Shaping(first_byte_delay_s=3.0)
    t0 = time.monotonic()
    err, _, _ = await _fail(_req(server.base_url, timeout_s=0.3))
    assert time.monotonic() - t0 < 2.0
    assert err.kind == "timeout" and "0.3 s" in str(err)
    rec = await _record_ended(server)
    assert rec.client_disconnected and rec.first_byte_sent_at is None


async def test_timeout_when_the_body_stalls(server):
    # Headers at once, then 1 KB of pcm (21 ms of audio) every ~0.43 s: longer than the 0.2 s timeout.
    server.shaping = Shaping(throughput_x=0.05)
    err, _, col = await _fail(_req(server.base_url, timeout_s=0.2))
    assert err.kind == "timeout" and "stalled" in str(err)
    assert err.bytes_received == len(col.data)


async def test_cut_mid_stream_delivers_what_arrived(server):
    server.shaping = Shaping(cut_after_bytes=30000, throughput_x=8.0)
    err, _, col = await _fail(_req(server.base_url))
    assert err.kind == "cut" and err.bytes_received == 30000 and "30000 bytes" in str(err)
    assert len(col.data) == 30000
    rec = await _record_ended(server)
    assert rec.cut and rec.bytes_sent == 30000


@pytest.mark.parametrize("chunk_bytes", [None, 4096])
async def test_cancel_closes_the_connection(server, chunk_bytes):
    server.shaping = Shaping(throughput_x=1.0)
    got_some = asyncio.Event()

    async def on_chunk(chunk: bytes) -> None:
        got_some.set()

    task = asyncio.create_task(fetch_speech(_req(server.base_url, chunk_bytes=chunk_bytes),
                                            FetchMarks(None, None, None), on_chunk))
    await asyncio.wait_for(got_some.wait(), 5)
    task.cancel()
    t_cancel = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec = await _record_ended(server)
    assert rec.client_disconnected and not rec.completed
    assert rec.ended_at - t_cancel < 0.5  # the server saw it at once, not at the end of the 2 s clip


async def test_cancel_while_waiting_for_headers(server):
    server.shaping = Shaping(first_byte_delay_s=5.0)
    task = asyncio.create_task(fetch_speech(_req(server.base_url), FetchMarks(None, None, None), Collector()))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec = await _record_ended(server)
    assert rec.client_disconnected and rec.ended_at - rec.received_at < 2.0


async def test_on_chunk_error_propagates_and_closes(server):
    server.shaping = Shaping(throughput_x=1.0)

    async def boom(chunk: bytes) -> None:
        raise RuntimeError("decoder broke")

    with pytest.raises(RuntimeError, match="decoder broke"):
        await fetch_speech(_req(server.base_url), FetchMarks(None, None, None), boom)
    rec = await _record_ended(server)
    assert rec.client_disconnected
