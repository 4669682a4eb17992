"""The extra request fields as typed by the user: extra JSON body, voice objects, Kokoro blends and lang_code.
Each refusal is one sentence naming the cause and where to fix it."""

from __future__ import annotations

import pytest

from voicegui import request_extras as rx


def test_extra_body_is_an_object_sent_as_given():
    assert rx.parse_extra_body("") == {} and rx.parse_extra_body("  \n") == {}
    assert rx.parse_extra_body('{"seed": 42, "exaggeration": 0.7, "nested": {"a": [1]}}') == {
        "seed": 42, "exaggeration": 0.7, "nested": {"a": [1]}}


@pytest.mark.parametrize("text, message", [
    ("{seed: 1}", "The Extra JSON body is not valid JSON (Expecting property name enclosed in double quotes at "
                  "line 1 column 2); fix it there."),
    ("[1, 2]", 'The Extra JSON body must be a JSON object like {"seed": 42}, not a list; fix it there.'),
    ('"x"', 'The Extra JSON body must be a JSON object like {"seed": 42}, not a string; fix it there.'),
    ('{"voice": "af_sky", "seed": 1}', "The Extra JSON body sets 'voice', which voicegui sends itself from the "
                                       "model, text, voice and format you choose; remove 'voice' from the Extra "
                                       "JSON body."),
    ('{"model": "m", "input": "i"}', "The Extra JSON body sets 'model', 'input', which voicegui sends itself from "
                                     "the model, text, voice and format you choose; remove 'model', 'input' from "
                                     "the Extra JSON body."),
    ("[" * 5000, "nests too deeply"),
])
def test_bad_extra_body_is_one_sentence(text, message):
    with pytest.raises(rx.ExtrasError) as info:
        rx.parse_extra_body(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_extra_body_too_long_is_refused():
    with pytest.raises(rx.ExtrasError, match="longer than 16384"):
        rx.parse_extra_body('{"a": "' + "x" * 20_000 + '"}')


def test_voice_object():
    assert rx.parse_voice("af_bella") == ("af_bella", False)
    assert rx.parse_voice(' {"id": "voice_1234"} ') == ("voice_1234", True)
    assert rx.parse_voice(rx.voice_text("voice_1234", True)) == ("voice_1234", True)
    for bad in ('{"id": 3}', '{"id": "a", "x": 1}', "{id}", '{"id": " "}'):
        with pytest.raises(rx.ExtrasError, match="voice"):
            rx.parse_voice(bad)


def test_kokoro_blend_round_trip_and_validation():
    text = rx.blend([("af_bella", 2), ("af_sky", 1)])
    assert text == "af_bella(2)+af_sky(1)"
    assert rx.parse_blend(text, ["af_bella", "af_sky"]) == [("af_bella", 2.0), ("af_sky", 1.0)]
    assert rx.parse_blend("af_bella+af_sky(0.5)") == [("af_bella", 1.0), ("af_sky", 0.5)]
    assert rx.blend([("af_bella", 3)]) == "af_bella"  # one voice: no weight to give
    with pytest.raises(rx.ExtrasError, match="does not list"):
        rx.parse_blend("af_bella+zz_nobody", ["af_bella"])
    with pytest.raises(rx.ExtrasError, match="above 0"):
        rx.blend([("af_bella", 0), ("af_sky", 1)])
    with pytest.raises(rx.ExtrasError, match="twice"):
        rx.blend([("af_bella", 1), ("af_bella", 2)])
    with pytest.raises(rx.ExtrasError, match="at least one voice"):
        rx.blend([])
    with pytest.raises(rx.ExtrasError, match="voice or voice"):
        rx.parse_blend("af_bella(x)")


def test_lang_code_and_the_request_fields():
    assert rx.lang_code_problem("") is None and rx.lang_code_problem("a") is None
    assert "one lower-case letter" in (rx.lang_code_problem("en-US") or "")
    assert rx.request_extra_body(True, "b", {"seed": 1}) == {"stream": True, "lang_code": "b", "seed": 1}
    assert rx.request_extra_body(False) == {}
    assert rx.request_extra_body(True, extra={"stream": False}) == {"stream": False}  # the user's JSON wins
