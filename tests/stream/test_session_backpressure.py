"""A full ring is not polled: the session writes again only after a wait the device spends playing (50 ms, or a
quarter of a small ring), and the monitor looks less often while the output plays from a buffer that cannot
run dry before its next look. The built-in server replaying a 2 s clip over HTTP on 127.0.0.1, real decoding and
playback on the PulseAudio null sink."""

from __future__ import annotations

import time

import pytest

from tests.stream.fetching import speech_request
from voicegui.stream import session as session_module
from voicegui.stream.ring import FloatRing
from voicegui.stream.session import SpeakOptions, SpeakSession

pytestmark = pytest.mark.audio


async def test_a_full_ring_is_written_again_only_after_the_device_played_a_while(server, monkeypatch):
    session = SpeakSession(SpeakOptions(request=speech_request(server.base_url, api_key=server.token),
                                        max_buffer_s=1.0))
    refused: list[float] = []  # when a write found the ring full
    write = FloatRing.write

    def counting_write(ring: FloatRing, frames):
        n = write(ring, frames)
        if ring is session._ring and n < len(frames):
            refused.append(time.monotonic())
        return n

    monkeypatch.setattr(FloatRing, "write", counting_write)
    metrics = await session.run()
    assert metrics.completed, metrics.error
    assert metrics.underrun_episodes == 0
    # the 2 s clip comes at once into a 1 s ring: about a second of waiting for room
    assert len(refused) >= 2
    full_s = refused[-1] - refused[0]
    assert full_s > 0.5
    # every 5 ms would be ~200 refusals a second; a wait of 50 ms at most 20 (more time per wait on a busy
    # machine only means fewer)
    assert len(refused) <= full_s / 0.04 + 2


async def test_the_monitor_looks_less_often_while_playing_from_a_long_buffer(server, monkeypatch):
    slept: list[float] = []
    sleep = session_module.asyncio.sleep

    async def recording_sleep(delay: float, *args, **kwargs):
        slept.append(delay)
        return await sleep(delay, *args, **kwargs)

    session = SpeakSession(SpeakOptions(request=speech_request(server.base_url, api_key=server.token)))
    monkeypatch.setattr(session_module.asyncio, "sleep", recording_sleep)
    metrics = await session.run()
    assert metrics.completed, metrics.error
    monitor = [d for d in slept if d in (session_module._MONITOR_PERIOD_S, session_module._MONITOR_PLAYING_S)]
    # 10 ms while waiting for the gate and for the last 60 ms, 30 ms while the 2 s clip plays from the buffer
    assert session_module._MONITOR_PERIOD_S in monitor
    assert monitor.count(session_module._MONITOR_PLAYING_S) > monitor.count(session_module._MONITOR_PERIOD_S)
