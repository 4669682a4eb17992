"""Read-along word timings of an espeak-ng voice against the sound itself: the built-in server's
/dev/captioned_speech gives each word's start from espeak-ng's own word events ('engine', none estimated), and
every start is within 100 ms of where that word's sound starts in what the null sink played (its monitor
recorded, tests/e2e/monitor.py; the words found by the silences between them)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.monitor import RATE, TAKES, MonitorRecording, judged, sound_segments
from voicegui.features.captioned import fetch_timings
from voicegui.server.engines import espeak as espeak_mod
from voicegui.server.thread import ServerThread
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions

pytestmark = [pytest.mark.audio, pytest.mark.played_clock,  # each word's start within 100 ms of the sink's
              pytest.mark.skipif(espeak_mod.missing() is not None, reason="espeak-ng is not installed")]

TOKEN = "onsets-token"
TEXT = "One, two, three. Four, five."  # espeak-ng pauses ~150 ms or more after each word here
VOICE = "espeak:en-us"


def lag_of(recorded: np.ndarray, reference: np.ndarray) -> int:
    """Where `recorded` sits in `reference` (samples), by cross-correlation."""
    n = 1 << int(np.ceil(np.log2(len(recorded) + len(reference))))
    corr = np.fft.irfft(np.fft.rfft(reference, n) * np.conj(np.fft.rfft(recorded, n)), n)
    return int(np.argmax(corr[:len(reference)]))


def heard_onsets(recorded: np.ndarray, reference: np.ndarray, gap_s: float = 0.08) -> list[float]:
    """Where each stretch of sound after a pause starts in the recording, on the reference's clock (s).

    Each stretch is placed in the reference by its own cross-correlation, so a stall of the device between
    words (the machine is busy) moves nothing; a stretch that continues the one before in the reference (a stall
    inside a word) is the same word."""
    onsets: list[float] = []
    reached = -RATE  # where the previous stretch ends in the reference
    for start, end in sound_segments(recorded, gap_s=gap_s):
        at = lag_of(recorded[start:end], reference)
        if at - reached > gap_s / 2 * RATE:
            onsets.append(at / RATE)
        reached = max(reached, at + end - start)
    return onsets


async def test_engine_word_onsets_match_the_played_sound() -> None:
    engine = espeak_mod.EspeakEngine()
    reference = np.concatenate([block async for block in engine.synthesize(TEXT, VOICE, 1.0)])
    with ServerThread(engine, token=TOKEN) as srv:
        timings = await fetch_timings(srv.base_url, TOKEN, "espeak-ng", VOICE, TEXT, 1.0)
        assert [(w.text, w.source) for w in timings.words] == [(w, "engine") for w in TEXT.split()]
        assert not timings.estimated
        request = SpeechRequest(base_url=srv.base_url, api_key=TOKEN, model="espeak-ng", voice=VOICE,
                                text=TEXT, response_format="pcm")
        for take in range(TAKES):
            player = Player()
            try:
                with MonitorRecording() as rec:
                    playback = await player.play(SpeakOptions(request=request))
                assert playback is not None and playback.metrics is not None and playback.metrics.completed
            finally:
                await player.close()

            def onsets_match() -> None:
                heard = heard_onsets(rec.samples, reference)
                assert len(heard) == len(timings.words), (heard, timings.words)
                for word, onset in zip(timings.words, heard, strict=True):
                    assert abs(word.start_s - onset) <= 0.100, ([(w.text, w.start_s) for w in timings.words], heard)

            if judged(rec, onsets_match, take):
                return
