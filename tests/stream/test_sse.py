"""stream/sse.py on its own: the event-stream framing on every split of the bytes, and the speech events."""

from __future__ import annotations

import base64
import json

import pytest

from voicegui.stream.sse import SpeechEvents, SseError, SseEvent, SseParser

WHERE = "http://127.0.0.1:1/v1"


def _parse(chunks: list[bytes], **kw) -> list[SseEvent]:
    parser = SseParser(WHERE, **kw)
    events = [e for c in chunks for e in parser.feed(c)]
    return events + parser.finish()


def _splits(data: bytes):
    """Every split into two pieces, and one byte at a time."""
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i:i + 1] for i in range(len(data))]


TRICKY = (b"\xef\xbb\xbf: a comment\r\n"
          b"event: speech.audio.delta\r\n"
          b"data: one\r\n"
          b"data:two\r\n"
          b"id: 7\r\nretry: 100\r\nunknown: field\r\n"
          b"\r\n"
          b"data: cr only\r\r"
          b"data\n"
          b"\n"
          b"data: last\n\n")


@pytest.mark.parametrize("chunks", list(_splits(TRICKY)))
def test_framing_is_the_same_on_every_split(chunks):
    assert _parse(chunks) == [SseEvent("speech.audio.delta", "one\ntwo"), SseEvent("message", "cr only"),
                              SseEvent("message", ""), SseEvent("message", "last")]


def test_a_final_event_without_its_blank_line_still_counts_but_a_partial_line_does_not():
    assert _parse([b"data: whole\n"]) == [SseEvent("message", "whole")]
    assert _parse([b"data: whole\r"]) == [SseEvent("message", "whole")]
    assert _parse([b"data: whole\n\ndata: {\"half"]) == [SseEvent("message", "whole")]


def test_a_line_longer_than_the_bound_is_refused_before_it_ends():
    parser = SseParser(WHERE, max_event_bytes=1000)
    parser.feed(b"data: " + b"A" * 900)
    with pytest.raises(SseError) as info:
        parser.feed(b"A" * 200)  # no line end yet: the parser must not wait for one
    assert info.value.kind == "protocol" and "longer than 1000 bytes" in str(info.value)
    assert "--stream-format audio" in str(info.value)


def test_an_event_whose_data_lines_add_up_past_the_bound_is_refused():
    parser = SseParser(WHERE, max_event_bytes=1000)
    with pytest.raises(SseError) as info:
        for _ in range(20):
            parser.feed(b"data: " + b"A" * 90 + b"\n")
    assert info.value.kind == "protocol" and "more than 1000 bytes of data" in str(info.value)


def _delta(audio: bytes, field: str = "audio") -> bytes:
    return b"data: " + json.dumps({"type": "speech.audio.delta", field: base64.b64encode(audio).decode()}).encode() \
        + b"\n\n"


def test_each_delta_is_one_piece_of_audio_and_done_gives_the_usage():
    ev = SpeechEvents(WHERE)
    usage = {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
    body = _delta(b"abc") + _delta(b"defg", "audio_data") + b'data: {"type":"speech.audio.done","usage":' \
        + json.dumps(usage).encode() + b"}\n\n"
    assert ev.feed(body) == [b"abc", b"defg"]
    assert ev.end() == []
    assert ev.finish() == usage


def test_variants_token_usage_type_on_the_event_line_and_done_marker():
    ev = SpeechEvents(WHERE)
    body = (b"event: speech.audio.delta\ndata: {\"audio\": \"AAE=\"}\n\n"
            b"data: {\"type\": \"speech.audio.transcript\", \"text\": \"hi\"}\n\n"
            b"data: {\"type\": \"speech.audio.done\", \"token_usage\": {\"total_tokens\": 9}}\n\n")
    assert ev.feed(body) == [b"\x00\x01"]
    assert ev.end() == [] and ev.finish() == {"total_tokens": 9}
    ev = SpeechEvents(WHERE)
    assert ev.feed(_delta(b"x") + b"data: [DONE]\n\n") == [b"x"]
    assert ev.end() == [] and ev.finish() is None


def test_the_last_event_without_its_blank_line_still_plays():
    ev = SpeechEvents(WHERE)
    assert ev.feed(_delta(b"abc") + b'data: {"type":"speech.audio.done"}\n') == [b"abc"]
    assert ev.end() == [] and ev.finish() is None
    ev = SpeechEvents(WHERE)
    assert ev.feed(_delta(b"de")[:-1]) == []
    assert ev.end() == [b"de"]


def test_no_done_event_is_a_cut():
    ev = SpeechEvents(WHERE)
    assert ev.feed(_delta(b"abc")) == [b"abc"]
    assert ev.end() == []
    with pytest.raises(SseError) as info:
        ev.finish()
    assert info.value.kind == "cut" and "after 3 bytes of audio" in str(info.value)
    assert "speech.audio.done" in str(info.value)


@pytest.mark.parametrize("body, words", [
    (b"data: {not json\n\n", "not JSON"),
    (b"data: [1, 2]\n\n", "not a JSON object"),
    (b'data: {"type": "speech.audio.delta", "audio": "***"}\n\n', "not valid base64"),
    (b'data: {"type": "speech.audio.delta", "audio": 5}\n\n', "without base64 audio"),
    (b'data: {"type": "speech.audio.delta"}\n\n', "without base64 audio"),
    (b"data: \xff\xfe\n\n", "not UTF-8"),
])
def test_bad_events_are_one_clear_sentence(body, words):
    with pytest.raises(SseError) as info:
        SpeechEvents(WHERE).feed(body)
    text = str(info.value)
    assert info.value.kind == "protocol" and words in text and WHERE in text
    assert text.count(". ") == 0 and text.endswith(".")


@pytest.mark.parametrize("payload, said", [
    ({"type": "speech.audio.error", "error": {"message": "Model overloaded\nretry"}}, "Model overloaded retry."),
    ({"type": "error", "message": "quota exceeded."}, "quota exceeded."),
    ({"type": "speech.audio.error"}, "It gave no reason."),
])
def test_an_error_event_quotes_the_server(payload, said):
    ev = SpeechEvents(WHERE)
    with pytest.raises(SseError) as info:
        ev.feed(b"data: " + json.dumps(payload).encode() + b"\n\n")
    assert info.value.kind == "server" and str(info.value).endswith(said)


def test_an_error_event_after_audio_is_a_cut_and_the_audio_before_it_comes_first():
    ev = SpeechEvents(WHERE)
    error = b'data: {"type": "speech.audio.error", "error": {"message": "boom"}}\n\n'
    assert ev.feed(_delta(b"abcd") + error + _delta(b"never")) == [b"abcd"]
    with pytest.raises(SseError) as info:
        ev.feed(_delta(b"more"))
    assert info.value.kind == "cut" and "after 4 bytes of audio" in str(info.value)
    assert str(info.value).endswith("The server said: boom.")


def test_audio_before_an_unreadable_line_in_the_same_bytes_comes_first():
    ev = SpeechEvents(WHERE)
    assert ev.feed(_delta(b"ok") + b"data: \xff\n\n") == [b"ok"]
    with pytest.raises(SseError) as info:
        ev.end()
    assert info.value.kind == "protocol" and "not UTF-8" in str(info.value)
