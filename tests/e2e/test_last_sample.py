"""Every sample is heard: the end of a clip reaches the null sink, measured on its monitor (tests/e2e/monitor.py).

The clip ends in a short loud burst after a pause; the last stretch of sound in the recording must be that
burst, whole. Before the output played itself out, the stream stopped ~9 ms before PulseAudio had played the
final period, so the burst was cut or missing, in every format.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tests.e2e.monitor import RATE, TAKES, MonitorRecording, judged, sound_segments
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Player
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions
from voicegui.wavfile import to_int16, wav_bytes, write_wav

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # the sink's recording must hold the last 10 ms

BURST_S = 0.010


def clip_with_final_burst() -> np.ndarray:
    body_t = np.arange(int(0.3 * RATE)) / RATE
    burst_t = np.arange(int(BURST_S * RATE)) / RATE
    return np.concatenate((0.3 * np.sin(2 * np.pi * 440 * body_t), np.zeros(int(0.2 * RATE)),
                           0.5 * np.sin(2 * np.pi * 1000 * burst_t))).astype(np.float32)


def assert_final_burst_heard(recorded: np.ndarray, clip: np.ndarray) -> None:
    segments = sound_segments(recorded)
    assert len(segments) == 2, f"expected the body and the final burst, heard {segments}"
    start, end = segments[-1]
    burst = clip[-int(BURST_S * RATE):].astype(np.float64)
    heard = float(np.sum(recorded[start:end].astype(np.float64) ** 2))
    ratio = heard / float(np.sum(burst ** 2))
    assert ratio > 0.9, f"only {ratio:.0%} of the final {BURST_S * 1000:.0f} ms burst was heard"


def request(fmt: str) -> SpeechRequest:
    return SpeechRequest(base_url="http://127.0.0.1:9/v1", api_key="none", model="m", voice="v", text="Hi.",
                         response_format=fmt)


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
async def test_the_last_sample_of_a_speak_is_heard(fmt):
    clip = clip_with_final_burst()
    body = to_int16(clip).tobytes() if fmt == "pcm" else wav_bytes(clip, RATE)
    for take in range(TAKES):
        player = Player()
        try:
            with MonitorRecording() as rec:
                playback = await player.play(SpeakOptions(request=request(fmt), source=replay_source(body)))
                assert playback is not None and playback.metrics is not None and playback.metrics.completed
        finally:
            await player.close()
        if judged(rec, lambda: assert_final_burst_heard(rec.samples, clip), take):
            return


@pytest.mark.parametrize("fmt", ["flac"])
def test_the_last_sample_is_heard_when_voicegui_speak_exits(fmt, tmp_path):
    # The CLI closes the device and exits right after the Speak: nothing may be cut there either.
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread

    clip = clip_with_final_burst()
    path = write_wav(tmp_path / "burst.wav", clip, RATE)
    for take in range(TAKES):
        with ServerThread(ReplayEngine(path), token="t") as server, MonitorRecording() as rec:
            res = subprocess.run(
                [sys.executable, "-m", "voicegui", "speak", "Hi.", "--base-url", server.base_url, "--api-key", "t",
                 "--model", "tts-1", "--voice", "alloy", "--format", fmt],
                capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert res.returncode == 0, res.stderr
        if judged(rec, lambda: assert_final_burst_heard(rec.samples, clip), take):
            return
