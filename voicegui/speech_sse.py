"""The wire format of speech as Server-Sent Events (`stream_format: "sse"` on /v1/audio/speech), in one place
for the client (`stream/sse.py`) and the built-in server (`server/app.py`).

OpenAI (gpt-4o-mini-tts and newer), speaches and vLLM-Omni send `text/event-stream` events whose data is JSON:
a `speech.audio.delta` with the audio (in the requested response_format) in base64, then one
`speech.audio.done` with the usage. Variants the client also accepts: `audio_data` for `audio`, `token_usage`
for `usage`, an error as `speech.audio.error` (or `error`).

No I/O, no threads: constants and one pure function.
"""

from __future__ import annotations

import base64
import json
from typing import Any

CONTENT_TYPE = "text/event-stream"
DELTA = "speech.audio.delta"
DONE = "speech.audio.done"
ERROR = "speech.audio.error"
STREAM_FORMATS = ("audio", "sse")


def event(payload: dict[str, Any]) -> bytes:
    """One event carrying `payload` as its JSON data, blank line included."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def delta_event(audio: bytes) -> bytes:
    return event({"type": DELTA, "audio": base64.b64encode(audio).decode("ascii")})


def done_event(usage: dict[str, Any]) -> bytes:
    return event({"type": DONE, "usage": usage})


def error_event(message: str, code: str | None = None) -> bytes:
    return event({"type": ERROR, "error": {"message": message, "type": "server_error", "code": code}})
