"""Every installed offline engine speaks a sentence in every response format, decoded by our own decoders:
non-silent, 24 kHz, a plausible duration. Real built-in server on 127.0.0.1, no audio device needed."""

from __future__ import annotations

import numpy as np
import pytest

from voicegui.decode.stream_decoder import create_decoder
from voicegui.server.embedded import BuiltinServer
from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech

FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
SENTENCE = "Hello there, this is a test."


@pytest.fixture(scope="module")
def builtin():
    with BuiltinServer(lazy=True) as server:
        yield server


def engine_voices(server: BuiltinServer) -> dict[str, str]:
    first: dict[str, str] = {}
    for voice in server.voices():
        first.setdefault(voice.engine, voice.id)
    return first


def test_every_engine_is_offered(builtin):
    engines = engine_voices(builtin)
    assert "hibari" in engines and "espeak-ng" in engines


@pytest.mark.parametrize("fmt", FORMATS)
async def test_each_engine_speaks_in_each_format(builtin, fmt):
    for engine, voice in engine_voices(builtin).items():
        decoder = create_decoder(fmt)
        parts: list[np.ndarray] = []

        async def collect(data: bytes, decoder=decoder, parts=parts) -> None:  # bound to this iteration
            parts.append(decoder.feed(data))

        request = SpeechRequest(base_url=builtin.base_url, api_key=builtin.token, model=builtin.default_model,
                                voice=voice, text=SENTENCE, response_format=fmt)
        await fetch_speech(request, FetchMarks(), collect)
        parts.append(decoder.flush())
        audio = np.concatenate(parts)
        assert decoder.detected_format == fmt, engine
        assert decoder.sample_rate == 24000, engine
        duration = len(audio) / 24000
        assert 0.5 < duration < 5.0, (engine, fmt, duration)
        assert float(np.sqrt(np.mean(audio ** 2))) > 0.01, (engine, fmt, "silent")
