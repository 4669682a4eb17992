"""What fetch_speech sends (extra body fields, a voice object) and how it words the errors of servers that are
not OpenAI: a FastAPI 422 validation list, a web page where the speech endpoint should be, a timeout. Real
aiohttp servers on 127.0.0.1 (the `local_app` fixture), shaped like Kokoro-FastAPI and like a web server
without the OpenAI API."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, fetch_speech

PCM = b"\x00\x01" * 2400


def _req(base_url: str, **over) -> SpeechRequest:
    fields = dict(base_url=base_url, api_key="k", model="kokoro", voice="af_bella", text="Hello.",
                  response_format="pcm", timeout_s=5.0)
    fields.update(over)
    return SpeechRequest(**fields)


async def _run(req: SpeechRequest) -> bytes:
    got = bytearray()

    async def on_chunk(b: bytes) -> None:
        got.extend(b)

    await fetch_speech(req, FetchMarks(), on_chunk)
    return bytes(got)


async def _fail(req: SpeechRequest) -> FetchError:
    with pytest.raises(FetchError) as info:
        await _run(req)
    return info.value


def kokoro_like(bodies: list[dict]) -> web.Application:
    """POST /v1/audio/speech validated like Kokoro-FastAPI's pydantic model: speed 0.25..4 else FastAPI's 422."""

    async def speech(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        speed = body.get("speed", 1.0)
        if not 0.25 <= speed <= 4.0:
            return web.json_response({"detail": [{
                "type": "less_than_equal", "loc": ["body", "speed"], "msg": "Input should be less than or equal to 4",
                "input": speed, "ctx": {"le": 4.0}}]}, status=422)
        return web.Response(body=PCM, content_type="audio/pcm")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    return app


async def test_extra_body_and_voice_object_are_sent_as_given(local_app):
    bodies: list[dict] = []
    url = await local_app(kokoro_like(bodies))
    extra = {"stream": True, "lang_code": "a", "seed": 7, "normalization_options": {"normalize": False}}
    assert await _run(_req(url, extra_body=extra)) == PCM
    assert bodies[0] == {"model": "kokoro", "voice": "af_bella", "input": "Hello.", "response_format": "pcm",
                         **extra}
    await _run(_req(url, voice="voice_1234", voice_object=True))
    assert bodies[1]["voice"] == {"id": "voice_1234"} and "stream" not in bodies[1]


async def test_fastapi_422_names_the_field_and_its_message(local_app):
    url = await local_app(kokoro_like([]))
    err = await _fail(_req(url, speed=4.5))
    assert err.kind == "bad_request" and err.status == 422
    assert str(err) == (f"The server at {url} refused a field of the request (HTTP 422): speed: Input should be "
                        "less than or equal to 4.")
    assert "[" not in str(err) and "{" not in str(err)  # not a Python list or dict


async def test_html_404_says_there_is_no_speech_endpoint_and_checks_v1(local_app):
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not "
                                 "Found</h1></body></html>", status=404, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    url = await local_app(app)
    root = url.removesuffix("/v1")
    err = await _fail(_req(root))
    assert err.kind == "not_found" and err.status == 404
    assert str(err) == (f"The server at {root} has no OpenAI speech endpoint: POST {root}/audio/speech answered "
                        "HTTP 404 with a web page. Does the base URL need to end in /v1?")
    assert "<" not in str(err) and "does not know" not in str(err)
    err = await _fail(_req(url))
    assert "end in /v1" not in str(err) and "no OpenAI speech endpoint" in str(err)


async def test_html_405_is_the_same_sentence(local_app):
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Method Not Allowed</body></html>", status=405, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    url = await local_app(app)
    err = await _fail(_req(url))
    assert err.status == 405 and "no OpenAI speech endpoint" in str(err) and "405 with a web page" in str(err)


async def test_a_json_404_still_names_model_or_voice(local_app):
    async def speech(request: web.Request) -> web.Response:
        return web.json_response({"error": {"message": "Voice not found", "param": "voice"}}, status=404)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    err = await _fail(_req(await local_app(app)))
    assert "does not know" in str(err) and "Voice not found" in str(err)


async def test_timeout_names_the_settings_to_change(local_app):
    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(2)  # renders the whole text before its first byte
        return web.Response(body=PCM)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", slow)
    url = await local_app(app)
    err = await _fail(_req(url, timeout_s=0.3))
    assert err.kind == "timeout"
    assert "'Ask the server to stream'" in str(err) and "--stream-field" in str(err) and "--timeout-s" in str(err)
    err = await _fail(_req(url, timeout_s=0.3, extra_body={"stream": True}))
    assert "--timeout-s" in str(err) and "stream" not in str(err).split(").", 1)[1]



@pytest.mark.parametrize("answer, said", [
    (lambda: web.json_response({"detail": "Not Found"}, status=404), "'Not Found'"),  # FastAPI: no such route
    (lambda: web.json_response({"detail": "Method Not Allowed"}, status=405), "'Method Not Allowed'"),
    (lambda: web.Response(text="404: Not Found", status=404), "'404: Not Found'"),  # aiohttp's own
])
async def test_a_framework_not_found_is_no_speech_endpoint(local_app, answer, said):
    async def any_path(request: web.Request) -> web.Response:
        return answer()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    url = await local_app(app)
    err = await _fail(_req(url))
    assert "has no OpenAI speech endpoint" in str(err) and "does not know" not in str(err), str(err)
    assert f"with {said}." in str(err)


async def test_a_strict_server_refusing_stream_says_how_to_stop_sending_it(local_app):
    async def strict(request: web.Request) -> web.Response:
        body = await request.json()
        extra = [k for k in body if k not in ("model", "input", "voice", "response_format", "speed")]
        return web.json_response({"detail": [{"type": "extra_forbidden", "loc": ["body", k],
                                              "msg": "Extra inputs are not permitted"} for k in extra]}, status=422)

    app = web.Application()
    app.router.add_post("/v1/audio/speech", strict)
    url = await local_app(app)
    err = await _fail(_req(url, extra_body={"stream": True}))
    assert str(err) == (f"The server at {url} refused a field of the request (HTTP 422): stream: Extra inputs are "
                        "not permitted. Stop sending \"stream\" (the provider's 'Ask the server to stream': no; "
                        "--stream-field off).")
    err = await _fail(_req(url, extra_body={"seed": 1}))
    assert str(err).endswith("seed: Extra inputs are not permitted.")


def strict_like_tts_daemon(bodies: list[dict]) -> web.Application:
    """Like tts-daemon 0.3.0 (pydantic extra="forbid"): any field it does not know is a 422; otherwise pcm."""

    async def speech(request: web.Request) -> web.Response:
        body = await request.json()
        bodies.append(body)
        extra = [k for k in body if k not in ("model", "input", "voice", "response_format", "speed")]
        if extra:
            return web.json_response({"detail": [{"type": "extra_forbidden", "loc": ["body", k],
                                                  "msg": "Extra inputs are not permitted", "input": body[k]}
                                                 for k in extra]}, status=422)
        return web.Response(body=PCM, content_type="audio/pcm")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", speech)
    return app


async def test_the_default_stream_field_is_dropped_for_a_server_that_refuses_it(local_app, caplog):
    """voicegui's own guess ("stream": true to servers other than OpenAI) must not break a strict server: asked
    again without it, once, logged and marked, and not sent to that server again in this process."""
    caplog.set_level("INFO", logger="voicegui.stream.fetch")
    bodies: list[dict] = []
    url = await local_app(strict_like_tts_daemon(bodies))
    marks = FetchMarks()
    got = bytearray()

    async def on_chunk(b: bytes) -> None:
        got.extend(b)

    await fetch_speech(_req(url, extra_body={"stream": True}, stream_field_auto=True), marks, on_chunk)
    assert [("stream" in b) for b in bodies] == [True, False]
    assert bytes(got) == PCM and marks.stream_field_dropped
    assert 'refuses the "stream" field' in caplog.text
    bodies.clear()
    again = FetchMarks()
    await fetch_speech(_req(url, extra_body={"stream": True}, stream_field_auto=True), again, on_chunk)
    assert [("stream" in b) for b in bodies] == [False] and again.stream_field_dropped


async def test_a_field_of_the_users_refused_with_stream_is_still_reported(local_app):
    """Only the default "stream" goes; the user's lang_code stays and its refusal is the error."""
    bodies: list[dict] = []
    url = await local_app(strict_like_tts_daemon(bodies))
    err = await _fail(_req(url, extra_body={"stream": True, "lang_code": "a"}, stream_field_auto=True))
    assert str(err).endswith("lang_code: Extra inputs are not permitted.")
    assert [sorted(k for k in b if k in ("stream", "lang_code")) for b in bodies] == [["lang_code", "stream"],
                                                                                      ["lang_code"]]


async def test_the_users_own_stream_field_is_never_dropped(local_app):
    bodies: list[dict] = []
    url = await local_app(strict_like_tts_daemon(bodies))
    err = await _fail(_req(url, extra_body={"stream": True}, stream_field_auto=False))
    assert err.status == 422 and "--stream-field off" in str(err)
    assert len(bodies) == 1


async def test_a_server_500_names_the_settings_that_can_help(local_app):
    """ovos-tts-server answers aac with a bare HTTP 500: the sentence says which settings to change."""

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="Internal Server Error")

    app = web.Application()
    app.router.add_post("/v1/audio/speech", broken)
    url = await local_app(app)
    err = await _fail(_req(url, response_format="aac"))
    assert err.kind == "server" and "HTTP 500" in str(err)
    assert "try another format (--format, the Format picker) or voice" in str(err)
