"""`voicegui speak --stream-format sse` end to end against the built-in server replaying a known clip, played on
the PulseAudio null sink: the device gets exactly what the plain run gives it (--out holds what the callback
handed to PortAudio), --json carries the usage, and a stream cut inside its events plays what came and says
it was cut."""

from __future__ import annotations

import numpy as np
import pytest

from tests.e2e.conftest import read_wav, speak_json
from voicegui.server.shaping import Shaping


@pytest.mark.parametrize("fmt", ["pcm", "flac", "mp3"])
def test_sse_plays_exactly_what_the_plain_stream_plays(fmt, shaped, clip, tmp_path):
    shaped.shaping = Shaping(throughput_x=4.0, write_bytes=1024)  # events arrive over time, split across reads
    runs = {}
    for stream_format in ("audio", "sse"):
        out = tmp_path / f"{stream_format}.wav"
        res, m = speak_json(shaped, "--format", fmt, "--stream-format", stream_format, "--out", str(out))
        assert res.returncode == 0, res.stderr
        assert m["completed"] and m["error"] is None and m["detected_format"] == fmt
        assert m["stream_format"] == stream_format and not m["sse_ignored"]
        runs[stream_format] = (read_wav(out), m)
    (plain, plain_m), (sse, sse_m) = runs["audio"], runs["sse"]
    assert len(plain) > 0.9 * len(clip[1])
    np.testing.assert_array_equal(sse, plain)
    assert sse_m["bytes_received"] == plain_m["bytes_received"]  # the audio bytes, not the events around them
    assert plain_m["usage"] is None
    assert sse_m["usage"] == {"input_tokens": len("Hello there."), "output_tokens": 60,  # 1.2 s in 20 ms units
                              "total_tokens": len("Hello there.") + 60}


def test_a_cut_inside_the_events_plays_what_came_and_says_so(shaped, tmp_path):
    shaped.shaping = Shaping(cut_after_bytes=30_000)  # about 0.45 s of pcm as base64 events
    out = tmp_path / "cut.wav"
    res, m = speak_json(shaped, "--format", "pcm", "--stream-format", "sse", "--out", str(out))
    assert res.returncode != 0 and not m["completed"]
    assert "ended early" in m["error"] and "Played the" in m["error"]
    assert 0.2 * 24000 < len(read_wav(out)) < 0.6 * 24000
    assert m["error"] in res.stderr


def test_an_unknown_stream_format_is_refused_by_argparse(shaped):
    from tests.e2e.conftest import speak

    res = speak(shaped, "--stream-format", "websocket")
    assert res.returncode == 2 and "--stream-format" in res.stderr and "'audio', 'sse'" in res.stderr
