"""What is known about OpenAI's speech models and voices: the /audio/speech models and voices, the models
and voices of the Realtime API (websocket), each API's `speed` range, the announced shutdown dates, and the
notice shown for a model that is (being) shut down.

One home for these facts: providers offers them when a server lists none, stream.realtime talks to the
Realtime API with them, the built-in server's replay engine imitates OpenAI's lists, the window warns with
the notice. Pure data and functions (a base module: imports nothing of voicegui but other base modules);
safe on any thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from voicegui.limits import SPEED_RANGE

# /audio/speech
SPEECH_MODELS: tuple[str, ...] = ("gpt-4o-mini-tts", "tts-1", "tts-1-hd")
SPEECH_VOICES: tuple[str, ...] = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                                  "shimmer", "verse", "marin", "cedar")
SPEECH_SPEED_RANGE = SPEED_RANGE  # /audio/speech's `speed`

# The Realtime API
DEFAULT_REALTIME_MODEL = "gpt-realtime-2.1-mini"
# Current models from RealtimeSessionCreateRequestParam.model (SDK 3.57); the first is the default. The
# SDK marks gpt-realtime, gpt-realtime-mini(-2025-12-15) and gpt-audio-mini(-2025-12-15) deprecated.
REALTIME_MODELS: tuple[str, ...] = (DEFAULT_REALTIME_MODEL, "gpt-realtime-2.1", "gpt-realtime-2", "gpt-realtime-1.5")
# RealtimeAudioConfigOutputParam.Voice (SDK 3.57): no fable/onyx/nova, unlike /audio/speech. The SDK
# recommends marin and cedar.
REALTIME_VOICES: tuple[str, ...] = ("marin", "cedar", "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer",
                                    "verse")
DEFAULT_REALTIME_VOICE = "marin"
# audio.output.speed range (RealtimeAudioConfigOutputParam.speed): 0.25..1.5, narrower than /audio/speech.
REALTIME_SPEED_RANGE = (0.25, 1.5)

SPEECH_MODEL_SHUTDOWN: dict[str, date] = {
    "tts-1": date(2027, 1, 6),
    "tts-1-hd": date(2027, 1, 6),
    "gpt-4o-mini-tts": date(2027, 1, 6),
}
# "Announced shutdown date: 2027-01-20" in RealtimeSessionCreateRequestParam.model's docstring (SDK 3.57).
REALTIME_MODEL_SHUTDOWN: dict[str, date] = {
    m: date(2027, 1, 20) for m in ("gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
                                   "gpt-realtime-mini-2025-12-15")
}


def is_realtime_model(model: str) -> bool:
    """Model ids served only over the Realtime API (gpt-realtime*, gpt-4o(-mini)-realtime*)."""
    m = model.lower()
    return m in REALTIME_MODELS or m.startswith("gpt-realtime") or "-realtime" in m


def parse_date(value: Any) -> date | None:
    """A model's `shutdown_date`: the SDK types it `Optional[str]`; accept an ISO date/datetime or a Unix time."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC).date()
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value.strip()[:10])
    return None


def _payload_models(payload: Any) -> Iterable[Mapping[str, Any]]:
    data = payload.get("data") if isinstance(payload, Mapping) else payload
    if isinstance(data, list):
        return [m for m in data if isinstance(m, Mapping)]
    return []


def shutdown_notice(model: str, models_payload: Any = None, today: date | None = None) -> str | None:
    """A one-sentence notice if `model` is shut down or has an announced shutdown date, else None.

    `models_payload` is the JSON of GET /v1/models: when it lists `model`, its `shutdown_date` is used (and a
    null date there means "none announced" by that server); otherwise the dates known here apply.
    """
    when: date | None = None
    listed = False
    for m in _payload_models(models_payload):
        if m.get("id") == model:
            listed = True
            when = parse_date(m.get("shutdown_date"))
            break
    if not listed:
        when = SPEECH_MODEL_SHUTDOWN.get(model) or REALTIME_MODEL_SHUTDOWN.get(model)
    if when is None:
        return None
    today = today or date.today()
    if model in SPEECH_MODEL_SHUTDOWN or not is_realtime_model(model):
        instead = f"switch to {DEFAULT_REALTIME_MODEL} (served over the Realtime API)"
    else:
        instead = f"switch to {DEFAULT_REALTIME_MODEL}"
    if when <= today:
        return f"OpenAI shut down '{model}' on {when.isoformat()}; {instead}."
    days = (when - today).days
    return f"OpenAI shuts down '{model}' on {when.isoformat()} (in {days} day{'s' if days != 1 else ''}); {instead}."


def is_openai_url(base_url: str) -> bool:
    """True for OpenAI's own API (api.openai.com), whatever the path. Here, not in providers.py, so that
    `voicegui speak` can ask before its request without importing the provider lists' module (~10 ms)."""
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket: not OpenAI's; the request itself reports it
        return False
    return host.lower() == "api.openai.com"
