"""Server profiles detected on connect (providers.detect_profile + server_profile.identify) against real
aiohttp servers on 127.0.0.1 shaped like Kokoro-FastAPI, a Piper-style server, LocalAI and the built-in
server; the user's overrides; the profile as stored in the settings file."""

from __future__ import annotations

import pytest
from aiohttp import web

from voicegui import providers as pv, server_profile as sp
from voicegui.server.embedded import BuiltinServer

KOKORO_MODELS = {"object": "list", "data": [
    {"id": "tts-1", "object": "model", "created": 1686935002, "owned_by": "kokoro"},
    {"id": "tts-1-hd", "object": "model", "created": 1686935002, "owned_by": "kokoro"},
    {"id": "kokoro", "object": "model", "created": 1686935002, "owned_by": "kokoro"}]}
KOKORO_VOICES = {"voices": ["af_bella", "af_sky", "am_adam", "bf_emma"]}


def json_app(routes: dict[str, object], headers: dict[str, str] | None = None) -> web.Application:
    """GET <path> -> the JSON given, with `headers`; every other path 404s (aiohttp's text page)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(routes[request.path], headers=headers)

    app = web.Application()
    for path in routes:
        app.router.add_get(path, handler)
    return app


async def test_kokoro_fastapi_is_known_by_its_model_owner(local_app):
    url = await local_app(json_app({"/v1/models": KOKORO_MODELS, "/v1/audio/voices": KOKORO_VOICES}))
    found = await pv.detect_profile(url, None)
    p = found.profile
    assert (p.kind, p.label, p.evidence) == ("kokoro-fastapi", "Kokoro-FastAPI", "owned_by 'kokoro' in /models")
    assert p.speed_range == (0.25, 4.0) and p.speed_verified and p.send_stream
    assert p.blends and p.lang_code and p.formats == ("pcm", "wav", "mp3", "opus", "aac", "flac")
    assert not p.offers_realtime and p.models_listed
    assert [m.id for m in found.models] == ["tts-1", "tts-1-hd", "kokoro"]
    assert [v.id for v in found.voices] == KOKORO_VOICES["voices"]
    assert p.summary() == ('Kokoro-FastAPI (owned_by \'kokoro\' in /models): speed 0.25–4; sends "stream": true; '
                           "formats pcm, wav, mp3, opus, aac, flac.")


async def test_kokoro_onnx_server_without_models_is_known_by_its_voices(local_app):
    # The measured Kokoro ONNX server: voices but no /models; it streams only when asked.
    url = await local_app(json_app({"/v1/audio/voices": KOKORO_VOICES}))
    found = await pv.detect_profile(url, None)
    p = found.profile
    assert p.kind == "kokoro" and p.send_stream and p.blends and not p.speed_verified
    assert not p.offers_realtime and not p.models_listed and p.formats is None
    assert found.models == [] and "lists no models" in (found.models.reason or "")
    assert "speed 0.25–4 (unverified)" in p.summary() and "no model list: type the model id" in p.summary()
    assert "gpt-realtime" not in repr(found.models)  # no invented Realtime models to fail as "key not allowed"


async def test_piper_style_server_gives_its_pcm_rate_per_model(local_app):
    models = {"data": [{"id": "en_US-lessac-medium", "owned_by": "piper", "sample_rate": 22050},
                       {"id": "de_DE-thorsten-high", "owned_by": "piper", "audio": {"sample_rate": 16000}},
                       {"id": "odd", "owned_by": "piper", "sample_rate": 3}]}
    url = await local_app(json_app({"/v1/models": models, "/v1/voices": ["lessac"]}))
    p = (await pv.detect_profile(url, None)).profile
    assert p.kind == sp.UNKNOWN and not p.speed_verified and p.send_stream and p.formats is None
    assert p.pcm_rates == {"en_US-lessac-medium": 22050, "de_DE-thorsten-high": 16000}  # 3 Hz: not a rate
    assert p.pcm_rate_for("en_US-lessac-medium") == 22050 and p.pcm_rate_for("odd") is None
    assert "pcm de_DE-thorsten-high 16000 Hz, en_US-lessac-medium 22050 Hz" in p.summary()


async def test_localai_is_known_by_its_server_header_and_unknowns_stay_unverified(local_app):
    models = {"object": "list", "data": [{"id": "tts-1", "object": "model"}, {"id": "voice-en-us-amy-low",
                                                                             "object": "model"}]}
    url = await local_app(json_app({"/v1/models": models}, headers={"Server": "LocalAI"}))
    p = (await pv.detect_profile(url, None)).profile
    assert (p.kind, p.evidence) == ("localai", "Server: LocalAI") and p.send_stream and not p.speed_verified
    url = await local_app(json_app({"/v1/models": models}))
    p = (await pv.detect_profile(url, None)).profile
    assert p.kind == sp.UNKNOWN and p.label == "an unidentified server" and p.send_stream
    assert p.summary().startswith("An unidentified server: speed 0.25–4 (unverified)")


async def test_realtime_is_offered_only_when_listed(local_app):
    listed = {"data": [{"id": "gpt-4o-mini-tts"}, {"id": "gpt-realtime-2.1-mini"}]}
    url = await local_app(json_app({"/v1/models": listed}))
    assert (await pv.detect_profile(url, None)).profile.offers_realtime
    url = await local_app(json_app({"/v1/models": {"data": [{"id": "gpt-4o-mini-tts"}]}}))
    assert not (await pv.detect_profile(url, None)).profile.offers_realtime
    openai = sp.openai_profile()
    assert openai.offers_realtime and not openai.send_stream and openai.speed_verified


async def test_builtin_server_is_ours():
    with BuiltinServer(lazy=True) as srv:
        p = (await pv.detect_profile(srv.base_url, srv.token)).profile
    assert p.kind == "voicegui" and p.speed_verified and not p.send_stream and p.evidence.startswith("owned_by")


def test_overrides_win_and_are_said():
    p = sp.identify(KOKORO_MODELS, models_listed=True)
    o = sp.with_overrides(p, {"speed_min": 0.5, "speed_max": 2.0, "stream": False, "pcm_rate": 22050}, "kokoro")
    assert o.speed_range == (0.5, 2.0) and not o.send_stream and o.pcm_rate_for("kokoro") == 22050
    assert "speed 0.5–2 (yours)" in o.summary() and 'no "stream" field' in o.summary()
    assert sp.with_overrides(p, {}) == p


@pytest.mark.parametrize("options, words", [
    ({"speed_min": 0.5}, "both ends"),
    ({"speed_min": 2, "speed_max": 1}, "low < high"),
    ({"speed_min": 0.1, "speed_max": 1}, "within 0.25..4"),
    ({"stream": "yes"}, "true, false or empty"),
    ({"pcm_rate": 12}, "pcm rate must be"),
])
def test_bad_overrides_are_one_sentence(options, words):
    problem = sp.override_problem(options)
    assert problem and words in problem
    p = sp.identify(None, models_listed=False)
    assert sp.with_overrides(p, options) == p


def test_profile_round_trips_and_refuses_damage():
    p = sp.with_overrides(sp.identify(KOKORO_MODELS, models_listed=True), {"stream": False})
    assert sp.from_json(p.to_json()) == p
    with pytest.raises(ValueError, match="speed range"):
        sp.from_json({**p.to_json(), "speed_range": [0, 9]})
    with pytest.raises(ValueError, match="formats"):
        sp.from_json({**p.to_json(), "formats": ["wma"]})
    with pytest.raises(ValueError, match="JSON object"):
        sp.from_json([])
