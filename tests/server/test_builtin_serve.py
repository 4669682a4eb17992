"""The built-in voices as a server: BuiltinServer (per-run token, defaults, shaping, validation through the
real offline engines) and `voicegui serve` without --replay (a subprocess answering the OpenAI SDK)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal as os_signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import openai
import pytest

from tests.cli.test_serve import _parse
from voicegui.cli.serve import run_serve
from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable, default_voice
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.shaping import Shaping

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")
MAGIC = {"wav": b"RIFF", "flac": b"fLaC", "opus": b"OggS"}


@pytest.fixture(scope="module")
def builtin() -> Iterator[BuiltinServer]:
    with BuiltinServer() as srv:
        yield srv


async def _post(url: str, body: dict, token: str | None) -> tuple[int, bytes, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/audio/speech", json=body, headers=headers) as r:
            return r.status, await r.read(), r.headers.get("Content-Type", "")


async def _get(url: str, path: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{url}{path}", headers=headers) as r:
            return r.status, await r.json()


def _body(**over: object) -> dict:
    body: dict = {"model": "builtin", "voice": "heart", "input": "Hi.", "response_format": "pcm"}
    body.update(over)
    return body


# --- BuiltinServer ---------------------------------------------------------------------------------------

def test_defaults_and_voices(builtin):
    ids = [v.id for v in builtin.voices()]
    assert "heart" in ids
    assert (builtin.default_model, builtin.default_voice) == ("builtin", "heart")
    assert "builtin" in builtin.models()
    assert builtin.base_url.startswith("http://127.0.0.1:") and builtin.base_url.endswith("/v1")
    # A random token per run, long enough not to be guessed.
    assert len(builtin.token) >= 24


def test_each_run_has_its_own_token(builtin):
    with BuiltinServer() as other:
        assert other.token != builtin.token
        assert other.base_url != builtin.base_url


async def test_token_is_required(builtin):
    for token in (None, "wrong-" + builtin.token):
        status, data, ctype = await _post(builtin.base_url, _body(), token)
        assert status == 401 and ctype.startswith("application/json")
        assert b'"error"' in data
        status, js = await _get(builtin.base_url, "/audio/voices", token)
        assert status == 401 and "error" in js
    status, js = await _get(builtin.base_url, "/audio/voices", builtin.token)
    assert status == 200 and "heart" in [v["id"] for v in js["voices"]]


def test_openai_sdk_gets_audio(builtin):
    client = openai.OpenAI(base_url=builtin.base_url, api_key=builtin.token, max_retries=0)
    audio = client.audio.speech.create(model="builtin", voice="heart", input="Hello there.",
                                       response_format="pcm").content
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], dtype="<i2")
    assert len(samples) > 0.3 * 24000
    assert np.abs(samples).max() > 1000  # speech, not silence
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=builtin.base_url, api_key="not-the-token", max_retries=0).audio.speech.create(
            model="builtin", voice="heart", input="Hello.")


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_format_streams(builtin, fmt):
    status, data, ctype = await _post(builtin.base_url, _body(response_format=fmt), builtin.token)
    assert status == 200, data[:300]
    assert ctype.startswith("audio/")
    assert len(data) > 200
    if fmt in MAGIC:
        assert data[:4] == MAGIC[fmt]


@pytest.mark.parametrize("over,status,param", [
    ({"voice": "no-such-voice"}, 404, "voice"),
    ({"model": "tts-unknown"}, 404, "model"),
    ({"response_format": "ogg"}, 400, "response_format"),
    ({"speed": 0.1}, 400, "speed"),
    ({"speed": 4.5}, 400, "speed"),
    ({"input": "a" * 4097}, 400, "input"),
    ({"input": "   "}, 400, "input"),
])
async def test_bad_requests_get_openai_errors(builtin, over, status, param):
    got, data, ctype = await _post(builtin.base_url, _body(**over), builtin.token)
    assert got == status, data[:300]
    assert ctype.startswith("application/json")
    err = json.loads(data)["error"]
    assert err["param"] == param and err["message"]


async def test_edge_values_are_accepted(builtin):
    # The speed limits themselves are valid (the engine clamps what it cannot honour; it must not fail).
    for over in ({"speed": 0.25}, {"speed": 4.0}):
        status, data, _ = await _post(builtin.base_url, _body(**over), builtin.token)
        assert status == 200 and len(data) > 0, data[:300]


async def test_shaping_setter_applies_to_next_request(builtin):
    try:
        builtin.shaping = Shaping(error_status=503)
        status, data, _ = await _post(builtin.base_url, _body(), builtin.token)
        assert status == 503
    finally:
        builtin.shaping = None
    assert builtin.shaping == Shaping()
    status, data, _ = await _post(builtin.base_url, _body(), builtin.token)
    assert status == 200 and len(data) > 0
    rec = builtin.records[-1]
    # The server marks the record complete after its last write, which can land after the client has read it.
    for _ in range(250):
        if rec.completed:
            break
        await asyncio.sleep(0.02)
    assert rec.completed and rec.voice == "heart" and rec.model == "builtin"


def test_default_voice_falls_back_to_first():
    v = [VoiceInfo("espeak:en-us", "English (US)", "en-us", "espeak-ng"),
         VoiceInfo("piper:joe", "Joe", "en-us", "piper")]
    assert default_voice(v) == "espeak:en-us"
    assert default_voice([*v, VoiceInfo("heart", "Heart", "en-us", "hibari")]) == "heart"


class _ToneEngine:
    """A stand-in engine without "heart" (as on a machine without hibari)."""

    name = "tone"
    sample_rate = 24000

    def models(self) -> list[str]:
        return ["tone"]

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("tone:a", "A", "en", "tone")]

    async def synthesize(self, text: str, voice: str, speed: float) -> AsyncIterator[np.ndarray]:
        yield (0.3 * np.sin(np.arange(4800) * 2 * np.pi * 440 / 24000)).astype(np.float32)


async def test_without_hibari_the_first_voice_is_default():
    srv = BuiltinServer(engines=[_ToneEngine()])
    try:
        assert (srv.default_model, srv.default_voice) == ("builtin", "tone:a")
        status, data, _ = await _post(srv.base_url, _body(voice="tone:a"), srv.token)
        assert status == 200 and len(data) == 4800 * 2
    finally:
        srv.stop()
        srv.stop()  # twice is fine


def test_no_engine_at_all_is_a_clear_error(monkeypatch):
    import voicegui.server.embedded as bp

    monkeypatch.setattr(bp, "available_engines",
                        lambda warm=True, lazy=False: ([], ["espeak-ng not found: apt-get install espeak-ng"]))
    with pytest.raises(BuiltinUnavailable, match="apt-get install espeak-ng"):
        BuiltinServer()


# --- voicegui serve ----------------------------------------------------------------------------------------

def test_serve_without_engines_explains(monkeypatch, caplog):
    import voicegui.server.engines.builtin as builtin_mod

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(builtin_mod, "available_engines",
                        lambda warm=True: ([], ["hibari-tts not installed: pip install hibari-tts"]))
    assert run_serve(_parse("--port", "0")) == 1
    assert "pip install hibari-tts" in caplog.text and "--replay" in caplog.text


def test_serve_help_explains_the_key():
    out = subprocess.run([sys.executable, "-m", "voicegui", "serve", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60).stdout
    text = " ".join(out.split())
    assert "--no-token accept any api_key" in text and "VOICEGUI_SERVE_TOKEN" in text and "random" in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_offers_builtin_voices_to_the_openai_sdk():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "voicegui", "serve", "--port", str(port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        lines: list[str] = []
        url, key = None, ""
        deadline = time.monotonic() + 60  # a generous bound on start-up, not a measurement
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"ready on (http://127\.0\.0\.1:(\d+)/v1).* -- API key: (\S+)$", line)
            if m:
                url, key = m.group(1), m.group(3)
                assert int(m.group(2)) == port
        log_text = "".join(lines)
        assert url, "no ready line:\n" + log_text
        assert "engine hibari" in log_text  # which engines are present is logged

        assert asyncio.run(_get(url, "/audio/voices", None))[0] == 401  # the printed key is required
        status, js = asyncio.run(_get(url, "/audio/voices", key))
        assert status == 200
        ids = [v["id"] for v in js["voices"]]
        assert "heart" in ids

        client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
        assert "builtin" in [m.id for m in client.models.list().data]
        wav = client.audio.speech.create(model="builtin", voice="heart", input="Hello from the server.",
                                         response_format="wav").content
        assert wav[:4] == b"RIFF" and len(wav) > 44 + 2 * 24000 * 0.3

        proc.send_signal(os_signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "Traceback" not in log_text + out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
