"""Buffering behaviour with real parts: backpressure, underruns, Stop, and provider failures via the CLI."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests.e2e.conftest import TOKEN, speak, speak_json
from voicegui.server.shaping import Shaping
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.session import SpeakOptions, SpeakSession


def request(server, fmt: str = "pcm", **kw) -> SpeechRequest:
    return SpeechRequest(base_url=server.base_url, api_key=TOKEN, model="tts-1", voice="alloy",
                         text="Hello there.", response_format=fmt, **kw)


async def test_backpressure_bounds_memory_and_loses_nothing(shaped, clip):
    shaped.shaping = Shaping(throughput_x=20.0, write_bytes=1024)
    session = SpeakSession(SpeakOptions(request=request(shaped, "pcm"), max_buffer_s=0.25, keep_played=True))
    task = asyncio.create_task(session.run())
    ahead = []
    while not task.done():
        out = session._output
        if out is not None:
            ahead.append(session.frames_received - out.frames_played)
        await asyncio.sleep(0.005)
    metrics = task.result()
    assert metrics.completed, metrics.error
    capacity = int(0.25 * 24000)
    # The reader never got more than the ring plus one decoded chunk ahead of the device.
    assert max(ahead) <= capacity + 4096, max(ahead)
    np.testing.assert_array_equal(np.round(session.played_audio * 32768).astype(np.int16), clip[1])


def test_underruns_counted_when_the_server_is_slower_than_real_time(shaped):
    shaped.shaping = Shaping(throughput_x=0.5, write_bytes=1024)
    res, metrics = speak_json(shaped, "--format", "pcm", "--prebuffer-ms", "0")
    assert res.returncode == 0, res.stderr
    assert metrics["underrun_episodes"] >= 1 and metrics["underrun_ms"] > 100
    assert len(metrics["underrun_times_ms"]) == metrics["underrun_episodes"]
    assert metrics["completed"]


def test_no_underrun_at_1_5x_with_300ms_prebuffer(shaped):
    shaped.shaping = Shaping(throughput_x=1.5, write_bytes=1024)
    res, metrics = speak_json(shaped, "--format", "pcm", "--prebuffer-ms", "300")
    assert res.returncode == 0, res.stderr
    assert metrics["underrun_episodes"] == 0
    assert metrics["completed"]


async def test_stop_mid_stream_silences_at_once_and_closes_the_connection(shaped):
    shaped.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    session = SpeakSession(SpeakOptions(request=request(shaped, "mp3")))
    task = asyncio.create_task(session.run())
    deadline = time.monotonic() + 10
    while session._output is None or session._output.frames_played < 2400:
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    session.stop()
    played_at_stop = session._output.frames_played
    assert not session._output.active  # the device stream was aborted inside stop()
    metrics = await asyncio.wait_for(task, 5)
    stop_s = time.monotonic() - t0
    assert metrics.stopped and not metrics.completed and metrics.error is None
    assert session._output is not None
    # nothing more was handed to the device after stop() (PortAudio abort discards what it holds)
    assert session.snapshot().frames_played - played_at_stop <= 2400
    assert stop_s < 1.0
    deadline = time.monotonic() + 5
    while not shaped.records[-1].client_disconnected:
        assert time.monotonic() < deadline, "server never saw the connection close"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("status,expected", [
    (401, "key"),
    (429, "rate"),
    (500, "server"),
    (503, "server"),
    (400, "request"),
])
def test_provider_errors_reach_the_user_as_one_clear_line(shaped, status, expected):
    shaped.shaping = Shaping(error_status=status)
    res = speak(shaped, "--format", "mp3")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert expected in res.stderr.lower(), res.stderr


def test_wrong_key_unknown_voice_and_refused_connection(shaped):
    res = speak(shaped, "--format", "mp3", api_key="wrong")
    assert res.returncode == 1 and "key" in res.stderr.lower() and "Traceback" not in res.stderr
    res = speak(shaped, "--format", "mp3", "--voice", "nobody")
    assert res.returncode == 1 and "nobody" in res.stderr and "Traceback" not in res.stderr

    class Closed:
        base_url = "http://127.0.0.1:9/v1"

    res = speak(Closed, "--format", "mp3")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "127.0.0.1:9" in res.stderr or "connect" in res.stderr.lower(), res.stderr


def test_cut_stream_plays_what_arrived_and_says_so(shaped):
    shaped.shaping = Shaping(cut_after_bytes=20000, write_bytes=1024)
    res, metrics = speak_json(shaped, "--format", "pcm")
    assert res.returncode == 1
    assert "ended early" in res.stderr and "played the" in res.stderr.lower(), res.stderr
    assert metrics["audio_played_s"] == pytest.approx(metrics["audio_received_s"], abs=0.001)
    assert metrics["audio_played_s"] > 0.3
