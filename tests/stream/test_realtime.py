"""fetch_realtime against a local fake Realtime websocket server (tests/stream/realtime_server.py), whose
events are built and checked with the installed openai SDK's own Realtime types; plus the transcript
comparison, the model/voice lists and the shutdown notice."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import date
from typing import get_args, get_type_hints

import pytest
from openai.types.realtime.realtime_audio_config_output_param import RealtimeAudioConfigOutputParam

from tests.stream import fetching
from tests.stream.fetching import speech_request
from tests.stream.realtime_server import KNOWN_MODELS, FakeRealtimeServer, tone_pcm
from voicegui.openai_models import (
    REALTIME_MODELS,
    REALTIME_VOICES,
    SPEECH_MODEL_SHUTDOWN,
    is_realtime_model,
    shutdown_notice,
)
from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest
from voicegui.stream.realtime import fetch_realtime, transcript_differs, uses_realtime

pytestmark = pytest.mark.timeout(30)

THREE = "The first sentence is here. Is this the second one? Yes, and this is the third!"


@pytest.fixture
async def server():
    async with FakeRealtimeServer() as srv:
        yield srv
    assert srv.problems == [], srv.problems


def _req(base_url: str, **over) -> SpeechRequest:
    """A Realtime request: fetching.speech_request's, with a Realtime model and voice and a 5 s timeout."""
    return speech_request(base_url, **{"model": "gpt-realtime-2.1-mini", "voice": "marin", "timeout_s": 5.0, **over})


class Collector(fetching.Collector):
    """fetching's on_chunk collector that also keeps every transcript it is told."""

    def __init__(self) -> None:
        super().__init__()
        self.transcripts: list[str] = []

    def transcript(self, text: str) -> None:
        self.transcripts.append(text)


async def _fetch(req: SpeechRequest) -> tuple[int, FetchMarks, Collector]:
    marks, col = FetchMarks(), Collector()
    total = await fetch_realtime(req, marks, col, col.transcript)
    return total, marks, col


async def _fail(req: SpeechRequest) -> tuple[FetchError, Collector]:
    marks, col = FetchMarks(), Collector()
    with pytest.raises(FetchError) as info:
        await fetch_realtime(req, marks, col, col.transcript)
    return info.value, col


async def test_audio_arrives_whole_and_in_order(server):
    total, marks, col = await _fetch(_req(server.ws_url))
    expected = tone_pcm("Hello there.")
    assert col.data == expected and total == len(expected)
    assert len(col.chunks) == -(-len(expected) // server.chunk_bytes)  # one on_chunk per delta
    assert marks.request_sent is not None and marks.headers is not None and marks.first_byte is not None
    assert marks.request_sent <= marks.headers <= marks.first_byte
    (conn,) = server.connections
    assert conn.model == "gpt-realtime-2.1-mini" and conn.authorization == "Bearer test-key"
    await asyncio.wait_for(conn.closed.wait(), 5)


async def test_session_configured_for_pcm_audio_only_with_voice_and_instructions(server):
    await _fetch(_req(server.ws_url, voice="cedar", instructions="Calm and slow.", speed=3.0))
    (conn,) = server.connections
    update = conn.events[0]
    assert update["type"] == "session.update"
    s = update["session"]
    assert s["output_modalities"] == ["audio"]
    assert s["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert s["audio"]["output"]["voice"] == "cedar"
    assert s["audio"]["output"]["speed"] == 1.5  # clamped to the Realtime range
    assert "exactly as written" in s["instructions"] and "Calm and slow." in s["instructions"]
    create = conn.events[1]
    assert create["type"] == "response.create"
    assert create["response"]["conversation"] == "none" and create["response"]["output_modalities"] == ["audio"]


async def test_http_base_url_also_works(server):
    total, _, col = await _fetch(_req(server.http_url))
    assert total == len(tone_pcm("Hello there."))


async def test_three_sentences_make_three_responses_in_order(server):
    total, _, col = await _fetch(_req(server.ws_url, text=THREE))
    (conn,) = server.connections
    assert conn.responses == ["The first sentence is here.", "Is this the second one?",
                              "Yes, and this is the third!"]
    assert col.data == b"".join(tone_pcm(s) for s in conn.responses)
    assert total == len(col.data)
    # One response at a time: the fake server reports a second concurrent response.create as an error.
    assert not any(e["type"] == "error" for e in server.sent)


async def test_transcript_callback_and_verbatim_check(server):
    _, _, col = await _fetch(_req(server.ws_url, text=THREE))
    assert col.transcripts[-1] == THREE
    assert all(THREE.startswith(t) for t in col.transcripts)  # grows, never rewrites
    assert not transcript_differs(THREE, col.transcripts[-1])


async def test_reworded_reading_is_flagged(server):
    server.transcript_for = lambda text: "Sure! " + text
    _, _, col = await _fetch(_req(server.ws_url))
    assert col.transcripts[-1] == "Sure! Hello there."
    assert transcript_differs("Hello there.", col.transcripts[-1])


async def test_stop_mid_response_cancels_and_closes(server):
    server.delta_delay_s = 0.05
    col = Collector()
    task = asyncio.create_task(fetch_realtime(_req(server.ws_url, text=THREE), FetchMarks(), col))
    while len(col.chunks) < 2:
        await asyncio.sleep(0.005)
    t0 = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < 1.5
    (conn,) = server.connections
    await asyncio.wait_for(conn.closed.wait(), 2)
    assert conn.cancels and conn.cancels[0]["type"] == "response.cancel"
    assert conn.cancels[0]["response_id"].startswith("resp_")
    assert len(conn.responses) == 1  # the later sentences were never requested


async def test_error_event_becomes_fetch_error_with_server_message(server):
    server.error_after_deltas = 2
    server.error_message = "The server had an error while processing your request (req_123)."
    err, col = await _fail(_req(server.ws_url, text=THREE))
    assert err.kind == "server"
    assert err.server_message == server.error_message
    assert server.error_message in str(err)
    assert err.bytes_received == len(col.data) == 2 * server.chunk_bytes


async def test_unknown_model(server):
    err, col = await _fail(_req(server.ws_url, model="gpt-nonesuch"))
    assert err.kind == "not_found"
    assert "gpt-nonesuch" in str(err) and not col.chunks


async def test_bad_key_is_auth_at_the_upgrade(server):
    err, _ = await _fail(_req(server.ws_url, api_key="wrong"))
    assert err.kind == "auth" and err.status == 401
    assert "Incorrect API key provided." in str(err)
    assert not server.connections  # never upgraded


async def test_connection_refused():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    err, _ = await _fail(_req(f"ws://127.0.0.1:{port}/v1"))
    assert err.kind == "connection"
    assert "connection refused" in str(err)


async def test_silent_server_times_out():
    # A TCP listener that never answers the upgrade.
    srv = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        t0 = time.monotonic()
        err, _ = await _fail(_req(f"ws://127.0.0.1:{port}/v1", timeout_s=0.5))
        assert err.kind == "timeout" and time.monotonic() - t0 < 3
    finally:
        srv.close()


async def test_socket_cut_mid_response_is_cut_after_bytes(server):
    server.cut_after_deltas = 3
    err, col = await _fail(_req(server.ws_url, text=THREE))
    assert err.kind == "cut"
    assert err.bytes_received == len(col.data) == 3 * server.chunk_bytes
    assert "ended early" in str(err)


async def test_empty_text_sends_nothing(server):
    total, marks, col = await _fetch(_req(server.ws_url, text="  \n "))
    assert total == 0 and not server.connections and marks.request_sent is None


def test_voices_and_models_match_the_sdk():
    voice_hint = get_type_hints(RealtimeAudioConfigOutputParam)["voice"]
    sdk_voices = {a for arg in get_args(voice_hint) for a in get_args(arg) if isinstance(a, str)}
    assert set(REALTIME_VOICES) == sdk_voices
    assert set(REALTIME_MODELS) <= KNOWN_MODELS
    assert REALTIME_MODELS[0] == "gpt-realtime-2.1-mini"


def test_realtime_selection():
    assert uses_realtime(_req("wss://api.openai.com/v1", model="anything"))
    assert uses_realtime(_req("https://api.openai.com/v1", model="gpt-realtime-2.1-mini"))
    assert not uses_realtime(_req("https://api.openai.com/v1", model="tts-1"))
    assert not uses_realtime(_req("http://127.0.0.1:8880/v1", model="kokoro"))
    assert is_realtime_model("gpt-4o-mini-realtime-preview") and not is_realtime_model("gpt-4o-mini-tts")


@pytest.mark.parametrize(("text", "transcript", "differs"), [
    ("Hello, world!", "hello world", False),
    ("It’s 3.14 — “quoted”.", "It's 3 14 quoted", False),
    ("Hello   there.\nFriend", "Hello there friend.", False),
    ("Hello there.", "Hello their.", True),
    ("Read this.", "Read this. Anything else?", True),
    ("Read this.", "", True),
])
def test_transcript_differs(text, transcript, differs):
    assert transcript_differs(text, transcript) is differs


def test_shutdown_notice_known_dates():
    assert set(SPEECH_MODEL_SHUTDOWN) == {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}
    assert all(d == date(2027, 1, 6) for d in SPEECH_MODEL_SHUTDOWN.values())
    before = shutdown_notice("tts-1", today=date(2027, 1, 1))
    assert before is not None and "2027-01-06" in before and "in 5 days" in before
    assert "gpt-realtime-2.1-mini" in before
    after = shutdown_notice("tts-1-hd", today=date(2027, 2, 1))
    assert after is not None and "shut down" in after
    assert shutdown_notice("gpt-realtime-2.1-mini") is None
    assert shutdown_notice("kokoro") is None


def test_shutdown_notice_prefers_the_server_payload():
    payload = {"object": "list", "data": [
        {"id": "tts-1", "object": "model", "created": 1, "owned_by": "openai", "shutdown_date": "2027-03-01"},
        {"id": "gpt-4o-mini-tts", "object": "model", "created": 1, "owned_by": "openai", "shutdown_date": None},
        {"id": "my-voice", "object": "model", "created": 1, "owned_by": "me", "shutdown_date": "2026-12-31"},
    ]}
    notice = shutdown_notice("tts-1", payload, today=date(2027, 1, 1))
    assert notice is not None and "2027-03-01" in notice
    assert shutdown_notice("gpt-4o-mini-tts", payload, today=date(2027, 1, 1)) is None  # the server knows best
    assert "shut down" in (shutdown_notice("my-voice", payload, today=date(2027, 1, 1)) or "")
    # Not listed by this server: the known date applies.
    assert "2027-01-06" in (shutdown_notice("tts-1-hd", payload, today=date(2027, 1, 1)) or "")


async def test_missing_websockets_package_is_a_clear_error(server, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "websockets.exceptions", None)  # import now fails
    err, _ = await _fail(_req(server.ws_url))
    assert err.kind == "protocol" and "openai[realtime]" in str(err)


async def test_endless_transcript_is_bounded_to_its_last_characters(server):
    from voicegui.limits import MAX_TRANSCRIPT_CHARS
    from voicegui.stream.realtime import TRANSCRIPT_MARKER

    words = [f"w{i}" for i in range(60_000)]  # ~330k characters per sentence, three sentences: ~1M
    server.transcript_for = lambda text: " ".join(words)
    total, _, col = await _fetch(_req(server.ws_url, text=THREE))
    assert total > 0 and col.transcripts
    bound = MAX_TRANSCRIPT_CHARS + len(TRANSCRIPT_MARKER)
    assert max(map(len, col.transcripts)) <= bound  # never more held or handed on, at any moment
    last = col.transcripts[-1]
    assert last.startswith(TRANSCRIPT_MARKER) and last.endswith(" ".join(words[-100:]))  # the newest text kept
    assert len(last) == bound
