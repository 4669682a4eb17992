"""What a speech request imports, in a fresh interpreter against a real HTTP server on 127.0.0.1: the speech
resource alone (not the SDK's other audio resources), and nothing at all once `import_speech_modules` ran
(the window's and `voicegui speak`'s preload), so the first request does not import on the loop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # the script imports the tests' own server helper
REQUEST = """
import asyncio, json, sys
from aiohttp import web
from tests.json_server import start_app
from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech, import_speech_modules

async def speech(request):
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
    await response.prepare(request)
    await response.write(bytes(4800))
    return response

async def main():
    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    runner, base_url = await start_app(app)
    if PRELOAD:
        import_speech_modules()
    before = set(sys.modules)
    async def chunk(data):
        pass
    request = SpeechRequest(base_url=base_url, api_key="x", model="tts-1", voice="alloy",
                            text="Hi.", response_format="pcm")
    size = await fetch_speech(request, FetchMarks(), chunk)
    await runner.cleanup()
    print(json.dumps({"bytes": size, "imported": sorted(set(sys.modules) - before),
                      "loaded": sorted(m for m in sys.modules if m.startswith("openai.resources.audio."))}))

asyncio.run(main())
"""


def _request(preload: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", f"PRELOAD = {preload}\n{REQUEST}"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("preload", [False, True])
def test_a_speech_request_loads_the_speech_resource_alone(preload: bool) -> None:
    result = _request(preload)
    assert result["bytes"] == 4800
    assert result["loaded"] == ["openai.resources.audio.speech"]  # no transcriptions, translations, voices


def test_after_the_preload_the_first_request_imports_nothing() -> None:
    result = _request(preload=True)
    # Modules of the standard library's own lazy imports may still come; none of the SDK's stack may.
    ours = [m for m in result["imported"] if m.split(".")[0] in ("openai", "anyio", "httpx2", "httpcore2", "h11")]
    assert ours == []
