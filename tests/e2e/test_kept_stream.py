"""The Player's device stream kept open between Speaks: Stop is silent at the sink at once and the stream stays
for the next Speak; a sound server that dies under a kept stream gives one clear sentence and the next Speak
opens a new stream. Measured on the null sink's monitor (tests/e2e/monitor.py) and a private PulseAudio."""

from __future__ import annotations

import asyncio
import functools

import numpy as np
import pytest

from tests.e2e.monitor import RATE, TAKES, MonitorRecording, judged, sound_segments
from tests.e2e.test_faults import OwnPulse, own_pulse  # noqa: F401  (the fixture)
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Player
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions
from voicegui.wavfile import to_int16

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # Stop silent at the sink's recording at once


TONE_AMPLITUDE = 0.3


def tone_pcm(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return to_int16((TONE_AMPLITUDE * np.sin(2 * np.pi * 440 * t)).astype(np.float32)).tobytes()


def options(body: bytes) -> SpeakOptions:
    request = SpeechRequest(base_url="http://127.0.0.1:9/v1", api_key="none", model="m", voice="v", text="Hi.",
                            response_format="pcm")
    return SpeakOptions(request=request, source=replay_source(body))


async def wait_playing(session, seconds: float) -> None:
    while session.snapshot().frames_played < seconds * RATE:
        await asyncio.sleep(0.01)


def assert_silent_after_stop(samples: np.ndarray, handed_s: float) -> None:
    # A machine stall inside the tone splits it in two at the sink (PulseAudio stood still too): only then is a
    # second segment taken again (judged); on a machine that ran throughout it is sound after Stop.
    segments = sound_segments(samples)
    assert len(segments) == 1, f"sound after Stop: {segments}"
    # What reached the sink is what was handed on before Stop, give or take the resampling's edges. Counted
    # by the tone's energy, not the segment's length: on a loaded machine PulseAudio can insert a short
    # underrun's silence inside the tone, which lengthens the segment without a sample more being played.
    heard_s = float(np.sum(np.square(samples, dtype=np.float64))) / (TONE_AMPLITUDE ** 2 / 2) / RATE
    assert heard_s <= handed_s + 0.02, (heard_s, handed_s)


async def test_stop_on_a_kept_stream_is_silent_at_the_sink_and_the_stream_stays():
    for take in range(TAKES):
        player = Player()
        try:
            await player.play(options(tone_pcm(0.1)))  # the stream is open (and idle) now
            stream = player.output.stream
            with MonitorRecording() as rec:
                playback = await player.start(options(tone_pcm(3.0)))
                await wait_playing(playback.session, 0.5)
                await player.stop()
                handed_s = playback.metrics.audio_played_s
                await asyncio.sleep(0.5)  # whatever still came out after Stop would be recorded now
            assert playback.metrics.stopped and 0.5 <= handed_s < 3.0
            # audio_played_s is rounded to 0.1 ms (2.4 frames): a frame more than that would be playing on.
            assert abs(playback.session.snapshot().frames_played - handed_s * RATE) <= 2.4, "it played on after Stop"
            assert player.output.stream is stream and stream.running, "Stop closed the kept stream"
            again = await player.play(options(tone_pcm(0.2)))
            assert again.metrics.completed and player.output.opened == 1
        finally:
            await player.close()

        if judged(rec, functools.partial(assert_silent_after_stop, rec.samples, handed_s), take):
            return


async def test_the_sound_server_dying_under_a_kept_stream_is_one_sentence_and_the_next_speak_reopens(
        own_pulse: OwnPulse, monkeypatch):  # noqa: F811
    own_pulse.start()
    monkeypatch.setenv("PULSE_SERVER", own_pulse.server)  # the ALSA pulse plugin connects at each open
    player = Player()
    try:
        first = await player.play(options(tone_pcm(0.2)))
        assert first.metrics.completed and player.output.opened == 1
        # The server dies while the stream is idle: the next Speak must not play into the dead stream.
        own_pulse.kill()
        own_pulse.start()
        second = await player.play(options(tone_pcm(0.2)))
        assert second.metrics.completed, second.metrics.error
        assert player.output.opened == 2
        # ... and while a Speak plays: one clear sentence, then the next Speak opens a new stream again.
        playing = await player.start(options(tone_pcm(4.0)))
        await wait_playing(playing.session, 0.5)
        own_pulse.kill()
        await asyncio.wait_for(playing.done.wait(), 30)
        metrics = playing.metrics
        assert metrics.error_kind == "device" and not metrics.completed
        assert "audio output stopped" in metrics.error and "\n" not in metrics.error
        assert player.output.stream is None, "the lost stream was kept"
        own_pulse.start()
        third = await player.play(options(tone_pcm(0.2)))
        assert third.metrics.completed, third.metrics.error
        assert player.output.opened == 3
    finally:
        await player.close()
