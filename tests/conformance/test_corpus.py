"""Files from real encoders (tests/conformance/corpus.py) served as the /v1/audio/speech body by an aiohttp
server on 127.0.0.1, played by `voicegui speak --format X --out` on the test null sink, and compared with a
whole-file FFmpeg decode of the same file (back to back: the concatenation of each file's own decode).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance import corpus
from tests.conformance.compare import check, concat, read_played, reference_decode
from tests.conformance.conftest import ENABLED, speak
from tests.conformance.loopback import FileServer

pytestmark = pytest.mark.audio

CONTENT_TYPE = {"mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg", "aac": "audio/aac",
                "wav": "audio/wav"}
# Cases voicegui does not play right yet, each with the gap; strict, so a fix turns them red until removed.
# (Another branch is building back-to-back segments in voicegui/decode.)
GAPS = {
    "b2b-wav": "app gap: back-to-back wav: only the first file plays; the second file's RIFF header and "
               "samples are dropped without an error or warning (completed=true)",
    "b2b-flac": "app gap: back-to-back flac: the second file is dropped without an error or warning, and the "
                "first file's last (short) frame is lost too, as the framer waits for a next frame header",
    "b2b-mp3": "app gap: back-to-back mp3: ~84 ms (2016 samples at 24 kHz) too much between the files: the "
               "second file's LAME Info frame and encoder delay are played instead of skipped",
}


@pytest.fixture(scope="module")
def served():
    missing = corpus.missing_tools()
    if missing:
        pytest.fail(f"the encoders {', '.join(missing)} are missing: run `make conformance`")
    root = corpus.build()
    with FileServer() as server:
        for case in corpus.CASES:
            server.files[case.name] = ((root / f"{case.name}.body").read_bytes(), CONTENT_TYPE[case.fmt])
        yield root, server


def _params():
    for case in corpus.CASES if ENABLED else corpus.CASES[:1]:
        marks = [pytest.mark.xfail(strict=True, reason=GAPS[case.name])] if case.name in GAPS else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_real_encoder_file_plays_completely(served, case: corpus.Case, tmp_path: Path):
    root, server = served
    out = tmp_path / "played.wav"
    res = speak(server.url(case.name), case.fmt, out)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)
    assert metrics["completed"] and metrics["error"] is None, metrics
    assert metrics["detected_format"] == case.fmt, metrics
    played = read_played(out)
    refs = [reference_decode(p.read_bytes(), case.fmt, played.rate) for p in corpus.part_files(root, case)]
    problem = check(played, concat(refs), case.fmt, case.name)
    assert not problem, problem
