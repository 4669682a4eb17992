"""Fuzz the Realtime event parser: whatever a websocket message holds (arbitrary bytes, arbitrary JSON, known
event types with fields of any JSON type), parse_server_event + EventReader.handle raise nothing but
FetchError, the documented error type (before the fix a malformed message was a JSONDecodeError, TypeError or
AttributeError, i.e. a traceback). stream/fetch.py has no event parser: it hands raw body bytes to the decoder,
which tests/decode/test_fuzz.py covers.

The handler is driven without an event loop: its only await is on_chunk, which here never suspends."""

from __future__ import annotations

import base64
import json
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest
from voicegui.stream.realtime import EventReader, parse_server_event

EVENT_TYPES = ["session.created", "session.updated", "response.created", "response.output_audio.delta",
               "response.output_audio_transcript.delta", "response.output_audio_transcript.done",
               "response.done", "error", "rate_limits.updated", ""]
FIELDS = ["delta", "transcript", "response", "error", "status", "status_details", "message", "id", "reason",
          "code", "param", "type"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["completed", "failed", "incomplete", base64.b64encode(b"\x01\x02").decode(), "!!"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5),
                                                                inner, max_size=4),
    max_leaves=12)
events = st.fixed_dictionaries({"type": st.sampled_from(EVENT_TYPES)},
                               optional={k: json_values for k in FIELDS[:6]})
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(coro: Coroutine[Any, Any, bool]) -> bool:
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise AssertionError("the handler suspended: on_chunk never does here")


def _reader() -> tuple[EventReader, list[bytes], list[str]]:
    chunks: list[bytes] = []
    transcripts: list[str] = []

    async def on_chunk(data: bytes) -> None:
        chunks.append(data)

    req = SpeechRequest(base_url="ws://127.0.0.1:1/v1", api_key="k", model="gpt-realtime-2.1-mini",
                        voice="marin", text="Hello.", response_format="pcm")
    reader = EventReader(req, FetchMarks(), on_chunk, transcripts.append)
    reader.max_transcript = 50  # exercise the bound too
    return reader, chunks, transcripts


def _feed(messages: list[bytes | str]) -> None:
    reader, chunks, transcripts = _reader()
    for raw in messages:
        try:
            _run(reader.handle(parse_server_event(raw)))
        except FetchError as exc:
            assert str(exc) and "\n" not in str(exc)
    assert all(isinstance(c, bytes) and c for c in chunks)
    assert all(isinstance(t, str) and len(t) <= 50 + 10 for t in transcripts)


@FUZZ
@given(st.lists(st.binary(max_size=64) | st.text(max_size=64), max_size=5))
def test_arbitrary_messages_raise_only_fetch_error(messages):
    _feed(messages)


@FUZZ
@given(st.lists(json_values.map(json.dumps), max_size=5))
def test_arbitrary_json_raises_only_fetch_error(messages):
    _feed(messages)


@FUZZ
@given(st.lists(events.map(json.dumps), min_size=1, max_size=8))
def test_known_events_with_any_field_types_raise_only_fetch_error(messages):
    _feed(messages)


def test_deeply_nested_json_is_a_fetch_error():
    _feed(["[" * 100_000, '{"type": "error", "error": ' + "[" * 100_000 + "]" * 100_000 + "}"])


@pytest.mark.parametrize("status, details", [
    ("incomplete", {"reason": "\n"}),  # what the fuzzer found (a status of "\n" too): the message broke its line
    ("\n", {}),
    ("incomplete", {"reason": "max_output_tokens\r\n  (see the docs)"}),
    ("failed", {"error": {"message": "Internal\nerror:\n\tretry"}}),
])
def test_a_server_reason_or_message_with_line_breaks_is_quoted_on_one_line(status, details):
    reader, _, _ = _reader()
    event = {"type": "response.done", "response": {"status": status, "status_details": details}}
    with pytest.raises(FetchError) as caught:
        _run(reader.handle(parse_server_event(json.dumps(event))))
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message and "\t" not in message
    said = details.get("reason") or details.get("error", {}).get("message") or status
    assert " ".join(said.split()) in message  # the server's words are kept, on one line
