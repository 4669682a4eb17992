"""Blind A/B without the window: two voices of a real built-in server (replay engines serving a loud and a
quiet recording), decoded like a Speak, hidden behind randomised names, switched at the same audio time,
loudness-matched without clipping, voted on and revealed."""

from __future__ import annotations

import random

import numpy as np
import pytest

from voicegui.features.blind_ab import RATE, BlindTest, BlindTestError, fetch_contender
from voicegui.features.loudness import PEAK_CEILING_DBFS, TARGET_LUFS, measure
from voicegui.server.benchclip import speech_like
from voicegui.stream.fetch import SpeechRequest
from voicegui.wavfile import write_wav

SECONDS = 2.0


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory):
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine

    d = tmp_path_factory.mktemp("blind")
    clip = speech_like(SECONDS, RATE)
    clip = 0.9 * clip / np.max(np.abs(clip))
    loud = write_wav(d / "loud.wav", clip, RATE)
    quiet = write_wav(d / "quiet.wav", 0.08 * clip, RATE)
    engines = [ReplayEngine(loud, voices=["loud"]), ReplayEngine(quiet, voices=["quiet"])]
    with BuiltinServer(engines=engines) as srv:
        yield srv


def request(srv, voice: str, fmt: str = "pcm") -> SpeechRequest:
    return SpeechRequest(base_url=srv.base_url, api_key=srv.token, model="tts-1", voice=voice, text="Hello.",
                         response_format=fmt)


async def contenders(srv):
    a = await fetch_contender("A", request(srv, "loud", "mp3"), "loud / mp3")
    b = await fetch_contender("B", request(srv, "quiet"), "quiet / pcm")
    return a, b


async def test_contenders_are_the_decoded_voices_with_their_loudness(two_voices):
    a, b = await contenders(two_voices)
    assert a.duration_s == pytest.approx(SECONDS, abs=0.1) and b.duration_s == pytest.approx(SECONDS, abs=0.01)
    assert a.loudness.lufs is not None and b.loudness.lufs is not None
    assert a.loudness.lufs - b.loudness.lufs == pytest.approx(20 * np.log10(0.9 / 0.9 / 0.08), abs=0.5)
    assert a.first_byte_ms is not None


async def test_names_are_hidden_and_sides_random(two_voices):
    a, b = await contenders(two_voices)
    orders = {BlindTest(a, b, random.Random(seed)).contender("1").side for seed in range(20)}
    assert orders == {"A", "B"}, "which side is Voice 1 must be random"
    test = BlindTest(a, b, random.Random(1))
    assert [test.name(s) for s in "12"] == ["Voice 1", "Voice 2"]
    assert not any("loud" in test.name(s) or "quiet" in test.name(s) for s in "12")


async def test_switching_continues_at_the_same_audio_time(two_voices):
    a, b = await contenders(two_voices)
    test = BlindTest(a, b, random.Random(3), matched=False)
    at = test.start_at("2", 1.25)
    assert at == 1.25
    body = np.frombuffer(test.body("2", at), dtype="<i2")
    want = test.contender("2").samples[int(1.25 * RATE):]
    assert len(body) == len(want)
    np.testing.assert_allclose(body / 32768.0, want, atol=1.5 / 32768)
    assert test.start_at("2", 5.0) == 0.0  # past its end: from the start


async def test_matched_playback_reaches_the_target_without_clipping(two_voices):
    a, b = await contenders(two_voices)
    test = BlindTest(a, b, random.Random(0), matched=True)
    for slot in "12":
        audio = np.frombuffer(test.body(slot), dtype="<i2").astype(np.float32) / 32768.0
        got = measure(audio, RATE)
        peak_db = 20 * np.log10(np.max(np.abs(audio)))
        assert peak_db <= PEAK_CEILING_DBFS + 0.01, "matching must never clip"
        # each reaches the target, unless its peak limited the gain (then it is as loud as it can be unclipped)
        assert got.lufs == pytest.approx(TARGET_LUFS, abs=0.2) or peak_db == pytest.approx(PEAK_CEILING_DBFS, abs=0.05)
    levels = [measure(np.frombuffer(test.body(s), dtype="<i2") / 32768.0, RATE).lufs for s in "12"]
    assert abs(levels[0] - levels[1]) < 1.0, "matched voices play at the same loudness"


async def test_vote_is_blind_then_reveals(two_voices):
    a, b = await contenders(two_voices)
    test = BlindTest(a, b, random.Random(5), text="Hello.")
    first = test.contender("1").label
    vote = test.vote("1")
    assert vote.blind and vote.winner == first and vote.text == "Hello." and vote.matched
    assert test.revealed and test.name("1") == f"Voice 1: {first}"
    assert not test.vote("same").blind  # voted again after the reveal: not blind any more


async def test_unknown_voice_is_one_clear_sentence(two_voices):
    with pytest.raises(BlindTestError) as err:
        await fetch_contender("A", request(two_voices, "nobody"), "nobody / pcm")
    message = str(err.value)
    assert message.startswith("nobody / pcm: ") and "nobody" in message[14:] and "\n" not in message
