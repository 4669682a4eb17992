"""Raw pcm at another rate than 24 kHz: read from the response, not assumed.

Piper-based servers send `response_format=pcm` at 22,050 Hz and say so in `X-Sample-Rate` (or `rate=` on the
Content-Type); played as 24 kHz it was 8.8 % fast, with no warning. A real aiohttp server on 127.0.0.1 sends
1 s of 22,050 Hz pcm with each way of saying it (or none), through the real session on the null sink and
through `voicegui speak`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from aiohttp import web

from voicegui.cli.main import UNANNOUNCED_PCM_RATE
from voicegui.formats import announced_pcm_format
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions

pytestmark = pytest.mark.audio

RATE = 22050


def tone(seconds: float, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    mono = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    return np.repeat(mono, channels).astype("<i2").tobytes()  # interleaved: every sample once per channel


class PiperLikeServer:
    """POST /v1/audio/speech -> `body` with `headers`; on its own loop in a thread."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body, self.headers = body, headers
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers=self.headers)
        await resp.prepare(request)
        for start in range(0, len(self.body), 4096):
            await resp.write(self.body[start:start + 4096])
        await resp.write_eof()
        return resp

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/audio/speech", self._speech)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # set once started
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> PiperLikeServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def options(server: PiperLikeServer, **kwargs) -> SpeakOptions:
    request = SpeechRequest(base_url=server.base_url, api_key="none", model="piper", voice="joe", text="Hello.",
                            response_format="pcm")
    return SpeakOptions(request=request, **kwargs)


@pytest.mark.parametrize("headers", [
    {"Content-Type": "audio/pcm", "X-Sample-Rate": "22050"},
    {"Content-Type": "audio/L16; rate=22050; channels=1"},
    {"Content-Type": "audio/pcm_s16le", "X-Sample-Rate": "22050"},
], ids=["x-sample-rate", "content-type-rate", "pcm_s16le"])
async def test_announced_rate_is_played_at_its_speed(headers):
    with PiperLikeServer(tone(1.0), headers) as server:
        playback = await Player().play(options(server))
    m = playback.metrics
    assert m.completed and m.error is None
    assert (m.pcm_rate, m.pcm_rate_source) == (RATE, "header")
    assert m.audio_played_s == pytest.approx(1.0, abs=0.01)  # not 0.919 s (8.8 % fast)


async def test_announced_channels_are_mixed_down():
    headers = {"Content-Type": "audio/L16; rate=22050; channels=2"}
    with PiperLikeServer(tone(1.0, channels=2), headers) as server:
        playback = await Player().play(options(server))
    assert playback.metrics.completed and playback.metrics.audio_played_s == pytest.approx(1.0, abs=0.01)


async def test_unannounced_rate_is_assumed_and_said_and_an_override_fixes_it():
    with PiperLikeServer(tone(1.0), {"Content-Type": "audio/pcm"}) as server:
        assumed = await Player().play(options(server))
        fixed = await Player().play(options(server, pcm_rate=RATE))
    assert assumed.metrics.pcm_rate_source == "assumed" and assumed.metrics.pcm_rate == 24000
    assert assumed.metrics.audio_played_s == pytest.approx(RATE / 24000, abs=0.01)
    assert (fixed.metrics.pcm_rate, fixed.metrics.pcm_rate_source) == (RATE, "override")
    assert fixed.metrics.audio_played_s == pytest.approx(1.0, abs=0.01)


def test_cli_says_when_the_rate_was_assumed_and_takes_pcm_rate(tmp_path):
    key = tmp_path / "key"
    key.write_text("none")
    key.chmod(0o600)
    with PiperLikeServer(tone(0.5), {"Content-Type": "audio/pcm"}) as server:
        def run(*extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "voicegui", "speak", "Hello.", "--base-url",
                                   server.base_url, "--api-key-file", str(key), "--format", "pcm", "--json",
                                   *extra], capture_output=True, text=True, timeout=60)

        assumed, fixed = run(), run("--pcm-rate", "22050")
    assert assumed.returncode == 0, assumed.stderr
    assert UNANNOUNCED_PCM_RATE in assumed.stderr and "Traceback" not in assumed.stderr
    assert json.loads(assumed.stdout)["pcm_rate_source"] == "assumed"
    assert fixed.returncode == 0, fixed.stderr
    assert UNANNOUNCED_PCM_RATE not in fixed.stderr
    data = json.loads(fixed.stdout)
    assert (data["pcm_rate"], data["pcm_rate_source"]) == (RATE, "override")
    assert data["audio_played_s"] == pytest.approx(0.5, abs=0.01)


def test_cli_refuses_a_rate_no_one_uses():
    res = subprocess.run([sys.executable, "-m", "voicegui", "speak", "Hello.", "--pcm-rate", "5"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--pcm-rate" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, (None, None)),
    ({"x-sample-rate": "22050"}, (22050, None)),
    ({"content-type": "audio/L16;rate=16000;channels=2"}, (16000, 2)),
    ({"content-type": 'audio/pcm; rate="44100"'}, (44100, None)),
    ({"x-sample-rate": "fast", "content-type": "audio/pcm; rate=0"}, (None, None)),
    ({"x-sample-rate": "99999999"}, (None, None)),
    ({"content-type": "audio/pcm; channels=300"}, (None, None)),
])
def test_announced_pcm_format_reads_only_believable_values(headers, expected):
    assert announced_pcm_format(headers) == expected


async def test_the_rate_travels_with_the_body_into_the_history_and_the_replay_cache(tmp_path):
    import wave

    from voicegui.features.history import HistoryStore, history_hook

    store = HistoryStore(tmp_path / "history")
    player = Player(history_hook=history_hook(store))
    with PiperLikeServer(tone(1.0), {"Content-Type": "audio/pcm", "X-Sample-Rate": "22050"}) as server:
        live = await player.play(options(server, keep_original=True), use_cache=True)
        again = await player.play(options(server), use_cache=True)  # from the body cache: no headers this time
    await player.close()
    assert not live.replayed and again.replayed
    assert again.metrics.audio_played_s == pytest.approx(1.0, abs=0.01)
    (entry,) = store.entries()
    assert entry.extra["pcm_rate"] == RATE
    saved = store.save_played_wav(entry.id, tmp_path / "played.wav")
    with wave.open(str(saved)) as w:
        assert w.getframerate() == RATE and w.getnframes() / RATE == pytest.approx(1.0, abs=0.01)

