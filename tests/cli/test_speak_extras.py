"""`voicegui speak` with request fields beyond OpenAI's (--stream-field, --lang-code, --extra-body JSON or @file,
a voice object) and `voicegui voices --profile`, as a user runs them: real `python -m voicegui` subprocesses
against a Kokoro-FastAPI-shaped aiohttp server on 127.0.0.1 that records each request body; audio goes to
the PulseAudio null sink (tests/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
PCM = b"\x00\x00\x10\x00" * 2400  # 0.2 s of 24 kHz pcm
KOKORO_MODELS = {"object": "list", "data": [{"id": "kokoro", "object": "model", "owned_by": "kokoro"}]}


async def run_cli(*argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicegui", *argv, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def kokoro(local_app):
    """(base URL, the JSON bodies POSTed to /v1/audio/speech)."""
    bodies: list[dict] = []

    async def speech(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(body=PCM, headers={"Content-Type": "audio/pcm", "X-Sample-Rate": "24000"})

    async def models(request: web.Request) -> web.Response:
        return web.json_response(KOKORO_MODELS)

    async def voices(request: web.Request) -> web.Response:
        return web.json_response({"voices": ["af_bella", "af_sky", "bf_emma"]})

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/audio/voices", voices)
    return await local_app(app), bodies


@pytest.mark.audio
async def test_speak_sends_stream_lang_code_extra_body_and_a_voice_object(kokoro, tmp_path):
    url, bodies = kokoro
    extra = tmp_path / "extra.json"
    extra.write_text('{"seed": 42, "normalization_options": {"normalize": false}}')
    code, _out, err = await run_cli("speak", "Hello.", "--base-url", url, "--model", "kokoro", "--voice",
                                    "af_bella(2)+af_sky(1)", "--format", "pcm", "--lang-code", "b",
                                    "--extra-body", f"@{extra}")
    assert code == 0, err
    assert bodies[-1] == {"model": "kokoro", "voice": "af_bella(2)+af_sky(1)", "input": "Hello.",
                          "response_format": "pcm", "stream": True, "lang_code": "b", "seed": 42,
                          "normalization_options": {"normalize": False}}
    code, _out, err = await run_cli("speak", "Hello.", "--base-url", url, "--voice", '{"id": "voice_1234"}',
                                    "--stream-field", "off", "--extra-body", '{"exaggeration": 0.7}')
    assert code == 0, err
    assert bodies[-1]["voice"] == {"id": "voice_1234"} and "stream" not in bodies[-1]
    assert bodies[-1]["exaggeration"] == 0.7


@pytest.mark.parametrize("argv, words", [
    (["--extra-body", '{"voice": "af_sky"}'], "sets 'voice', which voicegui sends itself"),
    (["--extra-body", "{seed: 1}"], "is not valid JSON"),
    (["--extra-body", "@/nonexistent/extra.json"], "cannot read /nonexistent/extra.json"),
    (["--stream-field", "maybe"], "must be auto, on or off"),
    (["--lang-code", "english"], "one lower-case letter"),
    (["--voice", '{"name": "x"}'], 'A voice object must be {"id": "<voice id>"}'),
])
async def test_bad_extras_are_refused_before_any_request(kokoro, argv, words):
    url, bodies = kokoro
    code, out, err = await run_cli("speak", "Hello.", "--base-url", url, *argv)
    assert code == 2 and words in err and "Traceback" not in err and out == ""
    assert bodies == []  # refused where it was typed: nothing was sent


async def test_voices_profile_says_what_the_server_is(kokoro):
    url, _ = kokoro
    code, out, err = await run_cli("voices", "--base-url", url, "--profile")
    assert code == 0, err
    assert out.strip().endswith("server: Kokoro-FastAPI (owned_by 'kokoro' in /models): speed 0.25–4; sends "
                                '"stream": true; formats pcm, wav, mp3, opus, aac, flac.')
    code, out, err = await run_cli("voices", "--base-url", url, "--profile", "--models", "--json")
    data = json.loads(out)
    assert data["profile"]["kind"] == "kokoro-fastapi" and data["profile"]["send_stream"] is True
    assert [m["id"] for m in data["models"]] == ["kokoro"] and data["models_reason"] is None


async def test_voices_for_a_server_without_models_offers_none_of_openais(local_app):
    async def voices(request: web.Request) -> web.Response:
        return web.json_response({"voices": ["af_bella", "af_sky"]})

    app = web.Application()
    app.router.add_get("/v1/audio/voices", voices)
    url = await local_app(app)
    code, out, err = await run_cli("voices", "--base-url", url, "--models", "--json")
    data = json.loads(out)
    assert code == 0 and data["models"] == [] and "lists no models" in data["models_reason"]
    code, out, err = await run_cli("voices", "--base-url", url, "--models")
    assert "gpt-realtime" not in out and "tts-1" not in out and "type the model id" in out
