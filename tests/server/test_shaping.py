"""Shaping's delivery patterns: the schedule (pure), and the built-in server and `voicegui serve` applying it.

Timing is only ever asserted as a lower bound the server must wait at least that long for, which load on the
machine can only make later, never earlier.
"""

from __future__ import annotations

import argparse
import time

import aiohttp
import pytest

from tests.server import clip
from voicegui.cli.serve import add_serve_arguments, run_serve, shaping_from_args
from voicegui.server.engines.replay import ReplayEngine
from voicegui.server.shaping import Shaping
from voicegui.server.thread import ServerThread


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(ReplayEngine(clip.write_wav(tmp_path_factory.mktemp("clip") / "clip.wav", 1.0))) as srv:
        yield srv


def test_plain_schedule_is_audio_time_over_throughput():
    assert Shaping(throughput_x=2.0).due_s(0.5) == pytest.approx(0.25)


def test_bursts_release_what_is_due_at_the_next_multiple():
    sh = Shaping(throughput_x=1.0, burst_s=0.3)
    assert [sh.due_s(t) for t in (0.01, 0.29, 0.3, 0.31, 0.9)] == pytest.approx([0.3, 0.3, 0.3, 0.6, 0.9])


def test_slow_start_then_the_full_rate_without_a_jump():
    sh = Shaping(throughput_x=2.0, slow_start_s=0.5, slow_start_x=0.5)
    assert sh.due_s(0.25) == pytest.approx(0.5)
    assert sh.due_s(0.5) == pytest.approx(1.0)
    assert sh.due_s(1.5) == pytest.approx(1.0 + 1.0 / 2.0)


@pytest.mark.parametrize("kwargs,message", [
    ({"burst_s": 0.1}, "set throughput_x"),
    ({"slow_start_s": 0.5}, "set throughput_x"),
    ({"throughput_x": 1.0, "burst_s": -1}, "burst_s must be >= 0"),
    ({"throughput_x": 1.0, "slow_start_x": 0}, "slow_start_x must be > 0"),
])
def test_bad_pattern_settings_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Shaping(**kwargs)


async def _first_and_last_byte(url: str, fmt: str) -> tuple[float, float, int]:
    """Seconds from sending the request to the first and to the last body byte, and the body size.

    Counted from the request, not from the response headers: the server's schedule starts before it sends its
    headers, and on a loaded machine the client may see them ~0.15 s later, which made a 0.4 s hold look like
    0.25 s. From the request, the schedule's lower bounds hold however late the client is."""
    body = {"model": "tts-1", "input": "Hello.", "voice": "alloy", "response_format": fmt}
    async with aiohttp.ClientSession() as s:
        t0 = time.monotonic()
        async with s.post(url + "/audio/speech", json=body) as r:
            assert r.status == 200
            first, size = None, 0
            async for chunk in r.content.iter_any():
                first = time.monotonic() - t0 if first is None else first
                size += len(chunk)
            assert first is not None
            return first, time.monotonic() - t0, size


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
async def test_server_holds_the_first_burst_back(server, fmt):
    # 1 s of audio at 10x would all be out after ~0.1 s; in 0.4 s bursts nothing leaves before 0.4 s.
    server.shaping = Shaping(throughput_x=10.0, burst_s=0.4)
    first, _, size = await _first_and_last_byte(server.base_url, fmt)
    assert first >= 0.39 and size > 0


async def test_server_slow_start_stretches_the_delivery(server):
    # 0.5 s at 0.5x (1 s), then 0.5 s at 10x: the body cannot end before ~1 s, where plain 10x ends at ~0.1 s.
    server.shaping = Shaping(throughput_x=10.0, slow_start_s=0.5, slow_start_x=0.5)
    _, last, size = await _first_and_last_byte(server.base_url, "pcm")
    assert last >= 0.95 and size == 48000


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_serve_options_set_the_patterns():
    sh = shaping_from_args(_parse("--throughput-x", "1", "--burst-ms", "300", "--slow-start-ms", "800",
                                  "--slow-start-x", "0.7"))
    assert (sh.burst_s, sh.slow_start_s, sh.slow_start_x) == pytest.approx((0.3, 0.8, 0.7))


def test_serve_refuses_a_burst_without_a_rate_in_one_sentence(caplog):
    assert run_serve(_parse("--burst-ms", "300")) == 2
    assert "set throughput_x (voicegui serve --throughput-x)" in caplog.text
