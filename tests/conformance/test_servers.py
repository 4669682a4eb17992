"""Third-party OpenAI-compatible servers (tests/conformance/servers.py), each engine (`model`) and every
response_format, played by `voicegui speak --out` on the test null sink through a recording proxy on
127.0.0.1, and compared with a whole-file FFmpeg decode of the very bytes the proxy passed on
(tests/conformance/compare.py).

A format a server cannot produce must fail with exit 1 and one sentence on stderr, no traceback, that says
the server's status and names the setting that fixes it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from tests.conformance.compare import check, read_played, reference_decode
from tests.conformance.conftest import ENABLED, speak
from tests.conformance.loopback import RecordingProxy
from tests.conformance.servers import OVOS_TTS_SERVER, SERVERS, TTS_DAEMON, running

pytestmark = pytest.mark.audio

FORMATS = ("wav", "pcm", "mp3", "flac", "aac", "opus")
# (server, format) -> the container it sends instead of the one asked for.
SENDS_OTHER = {
    (OVOS_TTS_SERVER.name, "pcm"): "wav",  # convert_audio() returns the WAV file for "pcm" too
}
# (server, format) -> why the server answers with an HTTP error instead of audio.
REFUSES = {
    (OVOS_TTS_SERVER.name, "aac"): "HTTP 500 text/plain: pydub asks ffmpeg for an 'aac' muxer, which does not exist",
    **{(TTS_DAEMON.name, f): "HTTP 422: it never transcodes and its piper and kokoro engines make only wav"
       for f in FORMATS if f != "wav"},
}
# (server, format) -> the voicegui gap that makes the case fail; strict, so a fix turns it red until removed.
GAPS: dict[tuple[str, str], str] = {}


def _params():
    for spec in SERVERS if ENABLED else SERVERS[:1]:
        for model in spec.models:
            for fmt in FORMATS:
                gap = GAPS.get((spec.name, fmt))
                marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
                yield pytest.param(spec, model, fmt, id=f"{spec.name}-{model}-{fmt}", marks=marks)


@pytest.fixture(scope="module")
def proxies(tmp_path_factory):
    """server name -> its RecordingProxy; each server is started on first use and runs until the module ends."""
    started: dict[str, RecordingProxy] = {}
    with contextlib.ExitStack() as stack:

        def get(spec) -> RecordingProxy:
            if spec.name not in started:
                problem = spec.missing()
                if problem:
                    pytest.fail(problem)
                url = stack.enter_context(running(spec, tmp_path_factory.mktemp(spec.name)))
                started[spec.name] = stack.enter_context(RecordingProxy(url))
            return started[spec.name]

        yield get


@pytest.mark.parametrize("spec,model,fmt", list(_params()))
def test_server_format_plays_completely(proxies, spec, model, fmt, tmp_path: Path):
    proxy = proxies(spec)
    out = tmp_path / "played.wav"
    res = speak(proxy.url, fmt, out, model=model)
    assert "Traceback" not in res.stderr, res.stderr
    status = proxy.statuses[-1]
    if (spec.name, fmt) in REFUSES:
        assert status >= 400, f"expected a refusal ({REFUSES[spec.name, fmt]}), got HTTP {status}"
        assert res.returncode == 1, (res.returncode, res.stderr)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("voicegui: "), res.stderr
        assert f"HTTP {status}" in lines[0], lines[0]
        assert "--format" in lines[0] or "response_format" in lines[0], f"names no setting: {lines[0]!r}"
        return
    assert status == 200, (status, proxy.bodies[-1][:300])
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)
    assert metrics["completed"] and metrics["error"] is None, metrics
    sent = SENDS_OTHER.get((spec.name, fmt), fmt)
    assert metrics["detected_format"] == sent, metrics
    if sent != fmt:  # played anyway, and said
        assert metrics["format_warning"] and "voicegui: " in res.stderr, (metrics, res.stderr)
    headers = proxy.headers[-1]
    rate = int(headers["X-Sample-Rate"]) if "X-Sample-Rate" in headers else None
    played = read_played(out)
    ref = reference_decode(proxy.bodies[-1], sent, played.rate, pcm_rate=rate)
    problem = check(played, ref, sent, f"{spec.name} {spec.version} {model} {fmt}")
    assert not problem, problem
