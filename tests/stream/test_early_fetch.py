"""EarlyFetch against the built-in server on 127.0.0.1: the request goes out before any session exists, what
arrives meanwhile is held (within its limit) and handed on whole and in order, with the marks; failures,
later pieces and an early fetch nobody takes."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tests.replay_server import record_ended
from tests.stream.fetching import Collector, fetch, speech_request
from voicegui.server.shaping import Shaping
from voicegui.stream.early_fetch import EarlyFetch
from voicegui.stream.fetch import FetchError, FetchMarks
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions


async def _until(condition, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true in time")


async def test_the_request_goes_out_before_a_session_takes_it(server):
    req = speech_request(server.base_url)
    early = EarlyFetch(req)
    await early.sent()
    assert early.marks.request_sent is not None and early.marks.request_written is not None
    await _until(lambda: server.records and server.records[0].completed)  # the server answered it whole
    # ... and the answer reached this side: the server's thread can finish writing before this loop has read
    # the headers (then the first chunk came after `taken_at`: 4 runs in 15 failed so).
    await _until(lambda: early.bytes_held > 0)
    marks, col = FetchMarks(), Collector()
    taken_at = time.monotonic()
    total = await early.source(req, marks, col)
    _, _, plain = await fetch(req)  # the same request fetched the usual way
    assert col.data == plain.data and total == len(plain.data) > 0
    assert early.started <= marks.request_sent <= marks.request_written <= marks.headers <= marks.first_byte
    # Each held chunk is handed on with the time it came off the network, not the time it was handed on.
    assert None not in col.arrived and col.arrived == sorted(col.arrived)
    assert marks.first_byte <= col.arrived[0] < taken_at
    assert marks.response_headers.get("content-type", "").startswith("audio/")
    assert early.bytes_held == 0


async def test_sent_means_written_to_the_socket_not_answered(server):
    """`sent()` returns once the request's last byte is written (httpcore's trace), before any answer: a fresh
    `voicegui speak` starts its audio stack's imports then, and not while the SDK is still building, connecting
    and writing (those imports would take the GIL from it)."""
    server.shaping = Shaping(first_byte_delay_s=2.0)  # the headers come with the first byte, 2 s later
    req = speech_request(server.base_url)
    early = EarlyFetch(req)
    await early.sent()
    marks = early.marks
    assert marks.request_sent is not None and marks.request_written is not None
    assert marks.request_sent <= marks.request_written
    assert marks.headers is None  # not waited for
    await early.aclose()
    # For the built-in voices `speak` waits only until the fetch has begun (their process answers at once).
    early = EarlyFetch(req)
    await early.sent(written=False)
    assert early.marks.request_sent is not None and early.marks.headers is None
    await early.aclose()


async def test_what_is_held_is_bounded_and_nothing_is_lost(server):
    server.shaping = Shaping(write_bytes=1024)  # as fast as it can: far more than the limit would arrive
    req = speech_request(server.base_url)
    early = EarlyFetch(req, max_held_bytes=8192)
    await _until(lambda: early.bytes_held >= 8192)
    await asyncio.sleep(0.2)  # the server could send the rest meanwhile; the fetch must not read it
    assert early.bytes_held < 8192 + 65536  # at most one socket read past the limit
    col = Collector()
    total = await early.source(req, FetchMarks(), col)
    _, _, plain = await fetch(req)
    assert col.data == plain.data and total == len(plain.data) > 8192 * 4


async def test_a_failed_request_raises_its_fetch_error_from_the_source():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    req = speech_request(f"http://127.0.0.1:{port}/v1")
    early = EarlyFetch(req)
    await early.sent()
    with pytest.raises(FetchError) as info:
        await early.source(req, FetchMarks(), Collector())
    assert info.value.kind == "connection"


async def test_other_requests_are_fetched_as_usual(server):
    first = speech_request(server.base_url)
    early = EarlyFetch(first)
    later = speech_request(server.base_url, text="And then some.")
    col = Collector()
    assert await early.source(later, FetchMarks(), col) == len(col.data) > 0
    assert await early.source(first, FetchMarks(), Collector()) > 0
    assert await early.source(first, FetchMarks(), Collector()) > 0  # taken once: a second call fetches again
    assert len(server.records) == 3


async def test_an_early_fetch_nobody_takes_is_ended(server):
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)  # 2 s of audio at real time
    early = EarlyFetch(speech_request(server.base_url))
    await _until(lambda: early.bytes_held > 0)
    await early.aclose()
    rec = await record_ended(server)
    assert not rec.completed and rec.client_disconnected


async def test_a_cancelled_source_ends_the_request(server):
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    req = speech_request(server.base_url)
    early = EarlyFetch(req)
    col = Collector()
    taking = asyncio.ensure_future(early.source(req, FetchMarks(), col))
    await _until(lambda: len(col.data) > 0)
    taking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await taking
    rec = await record_ended(server)
    assert not rec.completed and rec.client_disconnected


@pytest.mark.audio
async def test_a_session_plays_what_was_fetched_early_from_the_early_start(server):
    req = speech_request(server.base_url)
    early = EarlyFetch(req)
    await _until(lambda: early.bytes_held > 0)  # some of it waits for the session, as in `voicegui speak`
    playback = await Player().play(SpeakOptions(request=req, source=early.source, started_at=early.started),
                                   kind="cli", record=False)
    assert playback is not None and playback.metrics is not None
    assert playback.metrics.completed and playback.metrics.error is None
    session = playback.session
    assert session.started == early.started  # the TTFA's origin is when the request was started
    assert session.fetch_marks.request_sent is not None and session.fetch_marks.request_sent >= early.started
    _, _, plain = await fetch(req)
    assert session.bytes_received == len(plain.data)
    assert len(server.records) == 2  # one request for the session, one for the comparison: nothing fetched twice
