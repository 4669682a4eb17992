"""A local fake of OpenAI's Realtime API (websocket), speaking the subset voicegui.stream.realtime uses.

aiohttp websocket at ws://127.0.0.1:PORT/v1/realtime?model=... on the test's own event loop.

Protocol fidelity: every event the server sends is built as the installed openai SDK's own pydantic model
(SessionCreatedEvent, ResponseAudioDeltaEvent, RealtimeErrorEvent, ...), so a wrong field name or type fails
here rather than passing silently; every event the client sends is validated against the SDK's
RealtimeClientEvent union, and any field the SDK's models do not know (they accept extras) counts as an
error. `server.problems` collects both; tests assert it is empty.

Behaviour knobs (attributes, set before connecting):
- api_key: the bearer token required (a wrong one gets HTTP 401 at the upgrade, with OpenAI's JSON error).
- audio_for(text) -> bytes, transcript_for(text) -> str, chunk_bytes, delta_delay_s.
- Transcript deltas: the transcript's words are shared among the audio chunks (group i for chunk i). By default
  group i is sent right after audio chunk i; with `transcript_lead` = L it is sent right before audio chunk
  i - L (the groups of the first L+1 chunks before the first audio), as the real service sends text ahead of
  its audio; `transcript_events=False` sends no transcript event at all; `done_transcript_for(text)` makes
  the .done transcript differ from the deltas.
- error_after_deltas / error_message / error_code: send an `error` event mid-response.
- cut_after_deltas: drop the TCP connection mid-response (no close frame).
- unknown model: an `error` event with code model_not_found, then close.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from openai.types.realtime import (
    RealtimeClientEvent,
    RealtimeErrorEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_session_create_request_param import RealtimeSessionCreateRequestParam
from pydantic import BaseModel, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

_CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)
def _sdk_models() -> frozenset[str]:
    from typing import get_args, get_type_hints

    hint = get_type_hints(RealtimeSessionCreateRequestParam)["model"]
    out: set[str] = set()
    for arg in get_args(hint):
        out.update(a for a in get_args(arg) if isinstance(a, str))
    return frozenset(out)


# The model ids the SDK knows (its Literal), so "unknown model" means unknown to the SDK too.
KNOWN_MODELS: frozenset[str] = _sdk_models()


def _extras(obj: Any, path: str = "") -> list[str]:
    """Field paths the SDK's models did not declare (they allow extras, so validation alone would pass)."""
    found: list[str] = []
    if isinstance(obj, BaseModel):
        for name in obj.model_extra or {}:
            found.append(f"{path}.{name}".lstrip("."))
        for name in type(obj).model_fields:
            found.extend(_extras(getattr(obj, name), f"{path}.{name}"))
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            found.extend(_extras(item, f"{path}[{i}]"))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            found.extend(_extras(v, f"{path}.{k}"))
    return found


def tone_pcm(text: str, sample_rate: int = 24000) -> bytes:
    """Deterministic pcm16 for a text: 20 ms per character of a tone whose pitch depends on the text."""
    n = max(1, len(text)) * sample_rate // 50
    freq = 200 + (sum(map(ord, text)) % 400)
    t = np.arange(n) / sample_rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2").tobytes()


@dataclass
class ConnectionRecord:
    """What one websocket connection did, for assertions."""

    model: str | None
    authorization: str | None
    events: list[dict[str, Any]] = field(default_factory=list)  # client events, as sent (JSON)
    responses: list[str] = field(default_factory=list)  # the input text of each response.create
    cancels: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    transport: Any = None


class FakeRealtimeServer:
    def __init__(self) -> None:
        self.api_key: str | None = "test-key"
        self.audio_for: Callable[[str], bytes] = tone_pcm
        self.transcript_for: Callable[[str], str] = lambda text: text
        self.chunk_bytes = 4800  # 100 ms per delta
        self.delta_delay_s = 0.0
        self.transcript_lead: int | None = None
        self.transcript_events = True
        self.done_transcript_for: Callable[[str], str] | None = None
        self.error_after_deltas: int | None = None
        self.error_message = "The server had an error while processing your request."
        self.error_type = "server_error"
        self.error_code: str | None = None
        self.cut_after_deltas: int | None = None
        self.connections: list[ConnectionRecord] = []
        self.problems: list[str] = []  # protocol violations by either side
        self.sent: list[dict[str, Any]] = []  # every server event sent, as JSON
        self.response_started = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._n = 0
        self.port: int | None = None

    # --- lifecycle ------------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeRealtimeServer:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # _server is set once start() returned
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- protocol -------------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n:04d}"

    async def _send(self, ws: web.WebSocketResponse, event: BaseModel) -> None:
        problems = _extras(event)
        if problems:
            self.problems.append(f"server event {type(event).__name__} has undeclared fields {problems}")
        data = json.loads(event.to_json(indent=None))
        self.sent.append(data)
        await ws.send_str(json.dumps(data))

    async def _error(self, ws: web.WebSocketResponse, message: str, type_: str, code: str | None = None,
                     param: str | None = None) -> None:
        error: dict[str, Any] = {"message": message, "type": type_}
        if code is not None:
            error["code"] = code
        if param is not None:
            error["param"] = param
        await self._send(ws, RealtimeErrorEvent(type="error", event_id=self._id("event"), error=error))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return web.json_response(
                {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                           "param": None, "code": "invalid_api_key"}}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        rec = ConnectionRecord(model=request.query.get("model"), authorization=auth, transport=request.transport)
        self.connections.append(rec)
        try:
            await self._serve(ws, rec)
        finally:
            rec.close_code = ws.close_code
            rec.closed.set()
        return ws

    async def _serve(self, ws: web.WebSocketResponse, rec: ConnectionRecord) -> None:
        session: dict[str, Any] = {"type": "realtime", "model": rec.model or "", "output_modalities": ["audio"]}
        await self._send(ws, SessionCreatedEvent(type="session.created", event_id=self._id("event"),
                                                 session=session))
        if rec.model not in KNOWN_MODELS:
            await self._error(ws, f"The model '{rec.model}' does not exist or you do not have access to it.",
                              "invalid_request_error", code="model_not_found", param="model")
            await ws.close()
            return
        generating: asyncio.Task | None = None
        cancel = asyncio.Event()
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                self.problems.append(f"non-text frame {msg.type}")
                continue
            data = json.loads(msg.data)
            rec.events.append(data)
            try:
                event = _CLIENT_EVENT.validate_python(data)
            except ValidationError as exc:
                self.problems.append(f"invalid client event {data.get('type')}: {exc}")
                await self._error(ws, "Invalid client event.", "invalid_request_error")
                continue
            extras = _extras(event)
            if extras:
                self.problems.append(f"client event {data['type']} has fields the SDK does not know: {extras}")
            if event.type == "session.update":
                session.update(data["session"])
                await self._send(ws, SessionUpdatedEvent(type="session.updated", event_id=self._id("event"),
                                                         session=session))
            elif event.type == "response.create":
                if generating is not None and not generating.done():
                    await self._error(ws, "Conversation already has an active response in progress.",
                                      "invalid_request_error", code="conversation_already_has_active_response")
                    continue
                text = _input_text(data["response"])
                rec.responses.append(text)
                cancel.clear()
                generating = asyncio.create_task(self._respond(ws, rec, text, cancel))
            elif event.type == "response.cancel":
                rec.cancels.append(data)
                cancel.set()
            else:
                self.problems.append(f"unexpected client event {event.type}")
        if generating is not None and not generating.done():
            generating.cancel()
            await asyncio.gather(generating, return_exceptions=True)

    async def _respond(self, ws: web.WebSocketResponse, rec: ConnectionRecord, text: str,
                       cancel: asyncio.Event) -> None:
        n = len(rec.responses)
        rid, item = self._id("resp"), self._id("item")
        base = {"item_id": item, "output_index": 0, "content_index": 0, "response_id": rid}
        await self._send(ws, ResponseCreatedEvent(
            type="response.created", event_id=self._id("event"),
            response={"id": rid, "object": "realtime.response", "status": "in_progress",
                      "output_modalities": ["audio"], "conversation_id": None}))
        self.response_started.set()
        audio = self.audio_for(text)
        transcript = self.transcript_for(text)
        words = transcript.split(" ")
        chunks = [audio[i:i + self.chunk_bytes] for i in range(0, len(audio), self.chunk_bytes)]
        status = "completed"

        async def send_words(i: int) -> None:
            # Group i: the words of chunk i, spread over the audio a word at a time, like the real service.
            upto = len(words) * (i + 1) // len(chunks)
            start = len(words) * i // len(chunks)
            if upto > start and self.transcript_events:
                piece = " ".join(words[start:upto]) + (" " if upto < len(words) else "")
                await self._send(ws, ResponseAudioTranscriptDeltaEvent(
                    type="response.output_audio_transcript.delta", event_id=self._id("event"), delta=piece,
                    **base))

        for i, chunk in enumerate(chunks):
            if cancel.is_set():
                status = "cancelled"
                break
            if n == 1 and self.cut_after_deltas is not None and i == self.cut_after_deltas:
                # An abrupt end: no close frame, no response.done.
                rec.transport.abort()
                return
            if n == 1 and self.error_after_deltas is not None and i == self.error_after_deltas:
                await self._error(ws, self.error_message, self.error_type, code=self.error_code)
                return
            if self.transcript_lead is not None:
                for group in range(i + self.transcript_lead if i else 0, min(i + self.transcript_lead + 1,
                                                                              len(chunks))):
                    await send_words(group)
            await self._send(ws, ResponseAudioDeltaEvent(type="response.output_audio.delta",
                                                         event_id=self._id("event"),
                                                         delta=base64.b64encode(chunk).decode("ascii"), **base))
            if self.transcript_lead is None:
                await send_words(i)
            if self.delta_delay_s:
                try:
                    await asyncio.wait_for(cancel.wait(), self.delta_delay_s)
                except TimeoutError:
                    pass
        if status == "completed":
            await self._send(ws, ResponseAudioDoneEvent(type="response.output_audio.done",
                                                        event_id=self._id("event"), **base))
            if self.transcript_events:
                final = transcript if self.done_transcript_for is None else self.done_transcript_for(text)
                await self._send(ws, ResponseAudioTranscriptDoneEvent(type="response.output_audio_transcript.done",
                                                                      event_id=self._id("event"),
                                                                      transcript=final, **base))
        details = None if status == "completed" else {"type": "cancelled", "reason": "client_cancelled"}
        await self._send(ws, ResponseDoneEvent(
            type="response.done", event_id=self._id("event"),
            response={"id": rid, "object": "realtime.response", "status": status, "status_details": details,
                      "output_modalities": ["audio"], "conversation_id": None}))


def _input_text(response: dict[str, Any]) -> str:
    """The text of the (single, user) input item of an out-of-band response.create."""
    texts = [c.get("text", "") for item in response.get("input", []) for c in item.get("content", [])
             if c.get("type") == "input_text"]
    return " ".join(texts)
