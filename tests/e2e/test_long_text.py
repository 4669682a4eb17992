"""Text over the API's 4096-character limit: split at sentences, several requests, one gapless utterance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.e2e.conftest import TOKEN, read_wav, speak_json
from voicegui.server.shaping import Shaping
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.session import SpeakOptions, SpeakSession

LONG_TEXT = " ".join(f"This is sentence number {i} of a long text that goes on." for i in range(120))


@pytest.mark.parametrize("fmt", ["pcm", "flac", "mp3"])
async def test_pieces_play_back_to_back_in_one_session(shaped, clip, fmt):
    shaped.shaping = Shaping(throughput_x=8.0)
    first = SpeechRequest(base_url=shaped.base_url, api_key=TOKEN, model="tts-1", voice="alloy",
                          text="Piece one.", response_format=fmt)
    options = SpeakOptions(request=first, keep_played=True,
                           continuation=(dataclasses.replace(first, text="Piece two."),))
    before = len(shaped.records)
    session = SpeakSession(options)
    metrics = await session.run()
    assert metrics.completed, metrics.error
    assert len(shaped.records) - before == 2  # two requests...
    played = np.round(session.played_audio * 32768).astype(np.int16)
    if fmt in ("pcm", "flac"):
        np.testing.assert_array_equal(played, np.concatenate([clip[1], clip[1]]))  # ...one seamless stream
    else:
        assert abs(len(played) - 2 * len(clip[1])) < 2400
    assert metrics.underrun_episodes == 0


def test_cli_splits_text_over_4096_characters(shaped, clip, tmp_path):
    assert len(LONG_TEXT) > 4096
    shaped.shaping = Shaping(throughput_x=8.0)
    before = len(shaped.records)
    out = tmp_path / "played.wav"
    res, metrics = speak_json(shaped, "--format", "pcm", "--out", str(out), text=LONG_TEXT)
    assert res.returncode == 0, res.stderr
    assert metrics["completed"]
    sent = shaped.records[before:]
    assert len(sent) == 2 and all(r.input_chars <= 4096 for r in sent)
    assert sum(r.input_chars for r in sent) >= len(LONG_TEXT) - 2
    np.testing.assert_array_equal(read_wav(out), np.concatenate([clip[1], clip[1]]))
