"""A Realtime-provider Speak through the whole session: websocket audio deltas -> ring -> real device."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from tests.stream.realtime_server import FakeRealtimeServer, tone_pcm
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.session import SpeakOptions, SpeakSession

TEXT = "First one. Second one. Third."


def request(server: FakeRealtimeServer) -> SpeechRequest:
    return SpeechRequest(base_url=server.ws_url, api_key="test-key", model="gpt-realtime-2.1-mini",
                         voice="marin", text=TEXT, response_format="mp3")


async def test_realtime_audio_plays_exactly_with_marks_and_transcript():
    async with FakeRealtimeServer() as server:
        session = SpeakSession(SpeakOptions(request=request(server), keep_played=True))
        metrics = await session.run()
        assert server.problems == []
        conn = server.connections[-1]
    assert metrics.completed, metrics.error
    assert metrics.requested_format == "pcm" and metrics.detected_format == "pcm"
    expected = np.frombuffer(b"".join(tone_pcm(s) for s in conn.responses), dtype="<i2")
    played = np.round(session.played_audio * 32768).astype(np.int16)
    np.testing.assert_array_equal(played, expected)
    marks = metrics.marks
    assert marks.request_sent <= marks.first_byte <= marks.first_decoded <= marks.first_sound
    assert session.snapshot().transcript.split() == TEXT.split()


async def test_stop_cancels_the_realtime_response():
    async with FakeRealtimeServer() as server:
        server.delta_delay_s = 0.1  # ~real time, so Stop lands mid-response
        session = SpeakSession(SpeakOptions(request=request(server)))
        task = asyncio.create_task(session.run())
        deadline = time.monotonic() + 10
        while session._output is None or not session._output.playing:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        session.stop()
        metrics = await asyncio.wait_for(task, 5)
        conn = server.connections[-1]
        await asyncio.wait_for(conn.closed.wait(), 5)
        assert metrics.stopped and not metrics.completed
        assert conn.cancels, "the server never received response.cancel"
        assert len(conn.responses) < 3
