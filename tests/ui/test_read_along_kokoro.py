"""Read-along with a server's own word timestamps: a Speak to a server shaped like Kokoro-FastAPI (aiohttp on
127.0.0.1: owned_by 'kokoro' in /models, pcm from /v1/audio/speech, word timestamps from POST
/dev/captioned_speech in Kokoro-FastAPI's shape) highlights each word when the device plays it, on the null
sink; a server not known to answer that route is not asked."""

from __future__ import annotations

import base64

import pytest
from aiohttp import web

from tests.ui.conftest import burst_pcm, first_marks, speak_noting_the_tooltip
from tests.ui.test_main_window import speak_and_wait

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # each word's mark within 100 ms of its sound

SR = 24000
TEXT = "One. Two. Three."
BURSTS = ((0.10, 0.40), (0.75, 1.05), (1.40, 1.70))  # each word's sound, in seconds of the clip
CLIP_S = 1.9


def clip() -> bytes:
    return burst_pcm(BURSTS, CLIP_S)


def kokoro_app(asked: list[str], owner: str) -> web.Application:
    pcm = clip()

    async def speech(request: web.Request) -> web.Response:
        await request.json()
        return web.Response(body=pcm, headers={"Content-Type": "audio/pcm"})

    async def captioned(request: web.Request) -> web.Response:
        body = await request.json()
        asked.append(body["input"])
        stamps = [{"word": w, "start_time": s, "end_time": e} for w, (s, e) in zip(TEXT.split(), BURSTS, strict=True)]
        return web.json_response({"audio": base64.b64encode(pcm).decode(), "audio_format": "pcm",
                                  "timestamps": stamps})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "kokoro", "object": "model", "owned_by": owner}]})

    async def voices(request: web.Request) -> web.Response:
        return web.json_response({"voices": ["af_heart", "af_sky", "bf_emma"]})

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/dev/captioned_speech", captioned)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/audio/voices", voices)
    return app


async def connect(window, url: str) -> None:
    from tests.ui.conftest import until

    pp = window.provider_panel
    pp.set_provider("kokoro")
    window.base_url.setText(url)
    pp._on_base_url_edited()  # as editingFinished does
    await until(lambda: url in pp.connection.text() and window.voice.count() > 0, 10, "the voice list")
    window.format.setCurrentText("pcm")
    window.text_edit.setPlainText(TEXT)


async def test_kokoro_fastapis_word_timestamps_drive_the_highlight(qtbot, window, local_app):
    asked: list[str] = []
    await connect(window, await local_app(kokoro_app(asked, owner="kokoro")))
    assert window.provider_panel.profile().kind == "kokoro-fastapi"
    changes, playback, (timed, tip) = await speak_noting_the_tooltip(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed
    assert asked == [TEXT]
    assert timed and "the server's own word timestamps" in tip
    seen = first_marks(TEXT, changes)
    assert list(seen) == TEXT.split(), seen
    for word, (start, _end) in zip(seen, BURSTS, strict=True):
        assert abs(seen[word] - start) <= 0.100, (word, seen[word], start)


async def test_a_server_not_known_to_time_its_words_is_not_asked(qtbot, window, local_app):
    asked: list[str] = []
    await connect(window, await local_app(kokoro_app(asked, owner="someone-else")))
    assert window.provider_panel.profile().kind != "kokoro-fastapi"
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics is not None and playback.metrics.completed
    assert asked == []
    assert not window.text_panel.progress.timed
