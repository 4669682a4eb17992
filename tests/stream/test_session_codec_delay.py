"""The session tells its prebuffer policy how much of the stream's start the decoder dropped (mp3's encoder and
decoder delay), so the policy's rates count it (PrebufferPolicy.on_codec_delay). The built-in server (replay
engine, tests/replay_server.py) over HTTP on 127.0.0.1, real decoding and playback on the PulseAudio null sink."""

from __future__ import annotations

import pytest

from tests.stream.fetching import speech_request
from voicegui.stream.session import SpeakOptions, SpeakSession

pytestmark = pytest.mark.audio


@pytest.mark.parametrize("fmt,delay_s", [("mp3", (576 + 529) / 24000), ("pcm", 0.0)])
async def test_the_policy_is_told_the_delay_the_decoder_dropped(server, fmt, delay_s):
    session = SpeakSession(SpeakOptions(request=speech_request(server.base_url, api_key=server.token,
                                                               response_format=fmt)))
    metrics = await session.run()
    assert metrics.completed, metrics.error
    assert session._policy is not None
    assert session._policy.codec_delay_s == pytest.approx(delay_s)
