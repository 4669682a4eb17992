"""Third-party OpenAI-compatible servers (tests/conformance/servers.py), every response_format each offers,
played by `voicegui speak --out` on the test null sink through a recording proxy on 127.0.0.1, and compared
with a whole-file FFmpeg decode of the very bytes the proxy passed on (tests/conformance/compare.py).

A format a server cannot produce must fail with one sentence on stderr, no traceback, and a non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conformance.compare import check, read_played, reference_decode
from tests.conformance.conftest import speak
from tests.conformance.loopback import RecordingProxy
from tests.conformance.servers import LOCAL_TTS_STUDIO, OVOS_TTS_SERVER, ServerSpec, running

pytestmark = pytest.mark.audio

FORMATS = ("wav", "pcm", "mp3", "flac", "aac", "opus")
# What each server sends for each format, when it is not what was asked: (actual container, why).
SENDS_OTHER = {
    (OVOS_TTS_SERVER.name, "pcm"): "wav",  # convert_audio() returns the WAV file for "pcm" too
}
# Formats a server fails to produce at all (an HTTP error), with why.
FAILS = {
    (OVOS_TTS_SERVER.name, "aac"): "HTTP 500 text/plain: pydub asks ffmpeg for an 'aac' muxer, which does not exist",
}


@pytest.fixture(scope="module", params=[LOCAL_TTS_STUDIO, OVOS_TTS_SERVER], ids=lambda s: s.name)
def proxied(request, tmp_path_factory):
    spec: ServerSpec = request.param
    problem = spec.missing()
    if problem:
        pytest.fail(problem)
    with running(spec, tmp_path_factory.mktemp(spec.name)) as url, RecordingProxy(url) as proxy:
        yield spec, proxy


@pytest.mark.parametrize("fmt", FORMATS)
def test_server_format_plays_completely(proxied, fmt, tmp_path: Path, request):
    spec, proxy = proxied
    if (spec.name, fmt) in FAILS:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=(
            f"app gap: {spec.name} cannot make {fmt} ({FAILS[spec.name, fmt]}); voicegui says the HTTP error "
            "in one sentence but does not name the setting that fixes it (another --format)")))
    out = tmp_path / "played.wav"
    res = speak(proxy.url, fmt, out)
    assert "Traceback" not in res.stderr, res.stderr
    if (spec.name, fmt) in FAILS:
        assert res.returncode != 0, "a failed request must not exit 0"
        assert proxy.statuses[-1] >= 400
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("voicegui: "), res.stderr
        assert f"HTTP {proxy.statuses[-1]}" in lines[0], lines[0]
        assert "--format" in lines[0], f"the sentence names no setting that fixes it: {lines[0]!r}"
        return
    assert res.returncode == 0, res.stderr
    assert proxy.statuses[-1] == 200
    metrics = json.loads(res.stdout)
    assert metrics["completed"] and metrics["error"] is None, metrics
    body = proxy.bodies[-1]
    sent = SENDS_OTHER.get((spec.name, fmt), fmt)
    assert metrics["detected_format"] == sent, metrics
    headers = proxy.headers[-1]
    rate = int(headers["X-Sample-Rate"]) if "X-Sample-Rate" in headers else None
    played = read_played(out)
    ref = reference_decode(body, sent, played.rate, pcm_rate=rate)
    problem = check(played, ref, sent, f"{spec.name} {spec.version} {fmt}")
    assert not problem, problem
