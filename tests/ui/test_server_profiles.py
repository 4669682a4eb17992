"""The provider panel's server profile and options in a real offscreen window: detection on connect against
aiohttp servers on 127.0.0.1 shaped like Kokoro-FastAPI and like a Kokoro ONNX server without a model list,
the summary line, Realtime only where listed, the speed range, the user's overrides, the extra JSON body
checked where it is typed, the blend editor, and what a Speak then sends (audio to the null sink)."""

from __future__ import annotations

import base64
import json

import pytest
from aiohttp import web

from tests.ui.conftest import close_window, open_window, until
from tests.ui.test_main_window import speak_and_wait

pytestmark = pytest.mark.audio

PCM = b"\x00\x00\x10\x00" * 4800  # 0.4 s of 24 kHz pcm
KOKORO_MODELS = {"object": "list", "data": [
    {"id": "tts-1", "object": "model", "owned_by": "kokoro"},
    {"id": "kokoro", "object": "model", "owned_by": "kokoro"}]}
VOICES = {"voices": ["af_bella", "af_sky", "bf_emma"]}


def speech_app(bodies: list[dict], models: dict | None) -> web.Application:
    """A Kokoro-like server (a model list only if `models` is given) that records each speech body; asked for
    stream_format "sse" it answers as speaches does: Server-Sent Events carrying base64 pcm."""

    async def speech(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        bodies.append(body)
        if body.get("stream_format") != "sse":
            return web.Response(body=PCM, headers={"Content-Type": "audio/pcm"})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for start in range(0, len(PCM), 960):
            event = {"type": "speech.audio.delta", "audio": base64.b64encode(PCM[start:start + 960]).decode()}
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
        await resp.write(b'data: {"type": "speech.audio.done", "usage": {"input_tokens": 3}}\n\n')
        await resp.write_eof()
        return resp

    async def voices(request: web.Request) -> web.Response:
        return web.json_response(VOICES)

    async def model_list(request: web.Request) -> web.Response:
        return web.json_response(models)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_get("/v1/audio/voices", voices)
    if models is not None:
        app.router.add_get("/v1/models", model_list)
    return app


async def connect(window, url: str, what: str) -> None:
    pp = window.provider_panel
    pp.set_provider("kokoro")
    window.base_url.setText(url)
    pp._on_base_url_edited()  # as editingFinished does
    await until(lambda: what in pp.server.summary.text() and url in pp.connection.text(), 10, what)


async def test_kokoro_fastapi_profile_drives_the_panel_and_the_request(qtbot, window, local_app):
    bodies: list[dict] = []
    url = await local_app(speech_app(bodies, KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    assert pp.server.summary.text() == ("Kokoro-FastAPI (owned_by 'kokoro' in /models): speed 0.25–4; sends "
                                        '"stream": true; formats pcm, wav, mp3, opus, aac, flac.')
    assert [window.model.itemText(i) for i in range(window.model.count())] == ["tts-1", "kokoro"]
    assert (pp.speed.minimum(), pp.speed.maximum()) == (0.25, 4.0)
    assert window.settings.profiles["kokoro"]["kind"] == "kokoro-fastapi"  # stored per provider
    assert not pp.server.details.isVisible()
    pp.server.toggle.click()
    assert pp.server.lang_code.isVisible() and pp.server.blends.isVisible()  # Kokoro's extras are offered

    pp.model.setCurrentText("kokoro")
    pp.voice.setCurrentText("af_bella")
    window.format.setCurrentText("pcm")
    pp.server.lang_code.setText("b")
    pp.server.extra_body.setPlainText('{"seed": 42}')
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.completed and playback.metrics.error is None, playback.metrics
    assert bodies[-1] == {"model": "kokoro", "voice": "af_bella", "input": window.text_edit.toPlainText(),
                          "response_format": "pcm", "stream": True, "lang_code": "b", "seed": 42}
    assert window.settings.provider_options["kokoro"] == {"lang_code": "b", "extra_body": '{"seed": 42}'}


async def test_server_without_a_model_list_offers_no_openai_models(window, local_app):
    url = await local_app(speech_app([], None))  # a Kokoro ONNX server: voices, no /models
    await connect(window, url, "A Kokoro server")
    pp = window.provider_panel
    models = [window.model.itemText(i) for i in range(window.model.count())]
    assert not any(m.startswith("gpt-realtime") for m in models) and "gpt-4o-mini-tts" not in models
    assert "lists no models" in pp.connection.text() and "type the model id" in pp.connection.text()
    assert "speed 0.25–4 (unverified)" in pp.server.summary.text()
    assert "unverified" in pp.speed.toolTip()
    window.model.setCurrentText("tts-1")
    assert not pp.warning.switch_button.isVisible()  # no Realtime to switch to on this server


async def test_invalid_extra_json_is_refused_where_typed_and_at_speak(qtbot, window, local_app):
    bodies: list[dict] = []
    url = await local_app(speech_app(bodies, KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    pp.server.toggle.click()
    pp.server.extra_body.setPlainText('{"seed": 1}')
    pp.server.extra_body.setPlainText('{"seed": 1,')
    error = pp.server.extra_error
    assert error.isVisible() and error.text().startswith("The Extra JSON body is not valid JSON (")
    assert window.settings.provider_options["kokoro"]["extra_body"] == '{"seed": 1}'  # the last good one
    pp.server.extra_body.setPlainText('{"voice": "af_sky"}')
    assert "sets 'voice', which voicegui sends itself" in error.text()
    window.speak_button.click()
    await until(lambda: window.banner.isVisible(), 5, "the banner")
    assert "sets 'voice'" in window.banner.text() and bodies == []  # nothing was sent
    pp.server.extra_body.setPlainText("")
    assert not error.isVisible()


async def test_overrides_speed_stream_and_pcm_rate(qtbot, window, local_app):
    bodies: list[dict] = []
    url = await local_app(speech_app(bodies, KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    pp.server.toggle.click()
    pp.server.own_speed.setChecked(True)
    pp.server.speed_min.setValue(0.5)
    pp.server.speed_max.setValue(2.0)
    assert (pp.speed.minimum(), pp.speed.maximum()) == (0.5, 2.0)
    assert "speed 0.5–2 (yours)" in pp.server.summary.text()
    pp.server.stream.setCurrentIndex(2)  # no
    pp.server.pcm_rate.setValue(22050)
    assert window.settings.provider_options["kokoro"] == {"speed_min": 0.5, "speed_max": 2.0, "stream": False,
                                                         "pcm_rate": 22050}
    pp.voice.setCurrentText("af_sky")
    window.format.setCurrentText("pcm")
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.completed, playback.metrics
    assert "stream" not in bodies[-1]
    assert playback.session.pcm_rate == 22050 and playback.session.pcm_rate_source == "override"


async def test_blend_editor_builds_the_voice(window, local_app):
    url = await local_app(speech_app([], KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    pp.server.toggle.click()
    (a, wa), (b, wb), _ = pp.server.blends.pickers
    a.setCurrentIndex(a.findData("af_bella"))
    wa.setValue(2)
    b.setCurrentIndex(b.findData("af_sky"))
    pp.server.blends.use_button.click()
    assert pp.voice_id() == "af_bella(2)+af_sky(1)"
    wb.setValue(0)
    pp.server.blends.use_button.click()
    assert "weight of af_sky must be above 0" in pp.server.blends.error.text()
    assert pp.voice_id() == "af_bella(2)+af_sky(1)"  # unchanged


async def test_profile_and_options_survive_a_restart(window, server, local_app):
    url = await local_app(speech_app([], KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    window.provider_panel.server.stream.setCurrentIndex(2)
    await close_window(window)
    again = await open_window(server)
    try:
        pp = again.provider_panel
        pp.set_provider("kokoro")
        # shown from the settings before any answer: the stored profile with the override
        assert pp.server.summary.text().startswith("Kokoro-FastAPI") and 'no "stream" field' in pp.server.summary.text()
        assert pp.server.stream.currentIndex() == 2
    finally:
        await close_window(again)


async def test_before_any_answer_a_kokoro_provider_shows_none_of_openais_names(window):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens once closed
    window.settings.base_urls["kokoro"] = dead
    pp = window.provider_panel
    pp.set_provider("kokoro")
    models = [window.model.itemText(i) for i in range(window.model.count())]
    voices = [window.voice.itemData(i) for i in range(window.voice.count())]
    assert models == ["kokoro"] and voices == []  # the preset's model; the voice is typed, not OpenAI's
    assert pp.voice_id() == "af_heart"
    await until(lambda: "Could not connect" in pp.connection.text(), 10, "the connection error")
    assert [window.model.itemText(i) for i in range(window.model.count())] == ["kokoro"]
    pp.set_provider("builtin")
    assert pp.server.summary.text().startswith("The built-in server (owned_by 'voicegui-")


async def test_server_sent_events_are_chosen_per_provider_and_played(qtbot, window, server, local_app):
    """Server options > Audio transport: sse is sent as stream_format and the events' audio plays in full;
    it is stored for that provider only and survives a restart."""
    bodies: list[dict] = []
    url = await local_app(speech_app(bodies, KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    pp.server.toggle.click()
    pp.voice.setCurrentText("af_sky")
    window.format.setCurrentText("pcm")
    pp.server.transport.setCurrentIndex(1)  # Server-Sent Events
    assert window.settings.provider_options["kokoro"] == {"stream_format": "sse"}
    playback = await speak_and_wait(qtbot, window)
    assert bodies[-1]["stream_format"] == "sse"
    assert playback.metrics.completed and playback.metrics.error is None, playback.metrics
    assert playback.session.frames_received == len(PCM) // 2
    pp.server.transport.setCurrentIndex(0)  # back to the plain body: not stored (the default)
    assert "stream_format" not in window.settings.provider_options.get("kokoro", {})


async def test_a_lineup_sends_the_providers_extras_like_a_speak(qtbot, window, local_app):
    """The line-up built its own requests without the stream flag, lang_code or the extra JSON body."""
    bodies: list[dict] = []
    url = await local_app(speech_app(bodies, KOKORO_MODELS))
    await connect(window, url, "Kokoro-FastAPI")
    pp = window.provider_panel
    pp.server.toggle.click()
    pp.model.setCurrentText("kokoro")
    window.format.setCurrentText("pcm")
    pp.server.lang_code.setText("b")
    pp.server.extra_body.setPlainText('{"seed": 7}')
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    await until(lambda: len(panel.picker.all_ids()) > 0, 5, "the line-up's voice list")
    panel.set_checked(["af_sky"])
    panel.text.setPlainText("One voice.")
    bodies.clear()
    panel.run_button.click()
    await until(lambda: panel.is_running(), 5, "the line-up to start")
    await until(lambda: not panel.is_running(), 20, "the line-up to finish")
    assert bodies, "the line-up sent nothing"
    for body in bodies:  # the warm-up and the measured request alike
        assert body["voice"] == "af_sky"
        assert (body.get("stream"), body.get("lang_code"), body.get("seed")) == (True, "b", 7), body
