"""What a speech request may carry beyond OpenAI's fields, checked where the user types it.

- `parse_extra_body(text)`: a free-form JSON object merged into the request body as given (a server's own
  fields: seed, exaggeration, normalization_options, ...). Invalid JSON, anything but an object, or a field
  voicegui sets itself (model, input, voice, response_format) is refused with one sentence naming the cause
  and where to fix it: a typo is found where it is typed, not at Speak time, and nothing is overridden
  silently.
- `parse_voice(text)`: a voice id, or a voice object `{"id": "voice_1234"}` (OpenAI's custom voices).
- Kokoro voice blends: `blend([("af_bella", 2), ("af_sky", 1)])` -> "af_bella(2)+af_sky(1)" and
  `parse_blend` back, validated against the voices the server lists; `lang_code_problem` for Kokoro's
  `lang_code` (one letter, e.g. "a" American English, "b" British English).
- `request_extra_body(...)`: the body fields one request gets from the profile (stream flag), lang_code and
  the user's extra JSON.

A base module: pure functions, safe on any thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

# Fields voicegui fills in itself: an extra body that set them would silently change what the window shows.
RESERVED_FIELDS = ("model", "input", "voice", "response_format")
MAX_EXTRA_BODY_CHARS = 16_384
_BLEND_PART = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(?:\(\s*([0-9]+(?:\.[0-9]+)?)\s*\))?\s*$")
_LANG_CODE = re.compile(r"^[a-z]$")


class ExtrasError(ValueError):
    """The text typed is unusable; str() is one sentence naming the cause and the field to fix."""


def parse_extra_body(text: str, where: str = "Extra JSON body") -> dict[str, Any]:
    """The object in `text` ({} for blank text); ExtrasError as described in the module docstring."""
    if not text.strip():
        return {}
    if len(text) > MAX_EXTRA_BODY_CHARS:
        raise ExtrasError(f"The {where} is longer than {MAX_EXTRA_BODY_CHARS} characters; shorten it.")
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise ExtrasError(f"The {where} nests too deeply; flatten it.") from exc
    except ValueError as exc:
        err = exc if isinstance(exc, json.JSONDecodeError) else None
        at = f" at line {err.lineno} column {err.colno}" if err else ""
        why = err.msg if err else str(exc)
        raise ExtrasError(f"The {where} is not valid JSON ({why}{at}); fix it there.") from exc
    if not isinstance(value, dict):
        raise ExtrasError(f"The {where} must be a JSON object like {{\"seed\": 42}}, not a {_json_type(value)}; "
                          "fix it there.")
    reserved = [k for k in RESERVED_FIELDS if k in value]
    if reserved:
        names = ", ".join(f"'{k}'" for k in reserved)
        raise ExtrasError(f"The {where} sets {names}, which voicegui sends itself from the model, text, voice "
                          f"and format you choose; remove {names} from the {where}.")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def parse_voice(text: str) -> tuple[str, bool]:
    """(voice id, sent as an object) from what was typed: `{"id": "voice_1234"}` is the object form."""
    text = text.strip()
    if not text.startswith("{"):
        return text, False
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ExtrasError(f"The voice {text[:40]!r} starts like a JSON object but is not valid JSON; type a "
                          "voice id or {\"id\": \"voice_1234\"}.") from exc
    if not isinstance(value, dict) or set(value) != {"id"} or not isinstance(value["id"], str) \
            or not value["id"].strip():
        raise ExtrasError("A voice object must be {\"id\": \"<voice id>\"} and nothing else; fix the voice.")
    return value["id"].strip(), True


def voice_text(voice: str, as_object: bool) -> str:
    """What parse_voice reads back as (voice, as_object): the text for a voice field."""
    return json.dumps({"id": voice}) if as_object else voice


# --- Kokoro blends -------------------------------------------------------------------------------------------

def blend(parts: Iterable[tuple[str, float]]) -> str:
    """"af_bella(2)+af_sky(1)" from (voice, weight) pairs; ExtrasError for no voice, a repeated voice or a
    weight that is not positive."""
    parts = list(parts)
    if not parts:
        raise ExtrasError("Pick at least one voice for the blend.")
    seen: set[str] = set()
    out = []
    for voice, weight in parts:
        if not voice or not _BLEND_PART.match(voice) or "(" in voice:
            raise ExtrasError(f"{voice!r} is not a voice id for a blend.")
        if voice in seen:
            raise ExtrasError(f"The blend has {voice} twice; give it one weight.")
        if not weight > 0:
            raise ExtrasError(f"The weight of {voice} must be above 0, not {weight:g}.")
        seen.add(voice)
        out.append(voice if len(parts) == 1 else f"{voice}({weight:g})")
    return "+".join(out)


def parse_blend(text: str, known: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The (voice, weight) pairs of "af_bella(2)+af_sky" (no weight: 1); with `known` given, every voice
    must be one of them. ExtrasError naming the first bad part."""
    known_set = set(known)
    out: list[tuple[str, float]] = []
    for part in text.split("+"):
        m = _BLEND_PART.match(part)
        if not m:
            raise ExtrasError(f"{part.strip()!r} in the blend is not voice or voice(weight), e.g. af_bella(2).")
        voice, weight = m.group(1), float(m.group(2) or 1)
        if known_set and voice not in known_set:
            raise ExtrasError(f"The blend names {voice}, which the server does not list.")
        if not weight > 0:
            raise ExtrasError(f"The weight of {voice} must be above 0, not {weight:g}.")
        out.append((voice, weight))
    names = [v for v, _ in out]
    if len(set(names)) != len(names):
        raise ExtrasError("The blend names a voice twice; give each voice one weight.")
    return out


def lang_code_problem(code: str) -> str | None:
    """Why `code` is no Kokoro lang_code (one sentence), or None (empty: the server picks from the voice)."""
    if not code or _LANG_CODE.match(code):
        return None
    return (f"The language code must be one lower-case letter as Kokoro uses them (a: American English, "
            f"b: British English, e, f, h, i, j, p, z, ...), not {code[:20]!r}; fix it in Language code.")


def request_extra_body(send_stream: bool, lang_code: str = "",
                       extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The extra body fields of one request: `"stream": true` when the profile says so, `lang_code` if
    given, then the user's extra JSON (which wins: it is the most explicit)."""
    out: dict[str, Any] = {}
    if send_stream:
        out["stream"] = True
    if lang_code:
        out["lang_code"] = lang_code
    out.update(extra or {})
    return out
