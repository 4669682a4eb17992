"""Server profiles: what an OpenAI-compatible speech server is and what it accepts, decided from what it says.

`identify()` reads what a connection learnt (the GET /models payload, the `Server` header, the voice ids, the
base URL) and matches it against `KNOWN_SERVERS`, a table of servers whose limits were read from their own
code or documentation: the `speed` range, whether `"stream": true` must be sent for the audio to stream,
the formats, whether Kokoro voice blends and `lang_code` work. What a server does not say stays unverified
and the profile says so (`speed_verified`, `formats is None`) instead of guessing. Whether the Realtime
models are offered follows the model list (or OpenAI itself), never a fallback list; a raw-pcm sample rate a
model entry carries (`sample_rate`) is kept per model.

`"stream": true`: Kokoro-FastAPI streams by default but Kokoro ONNX servers and LocalAI only when asked
(measured: first byte at 18.7 s instead of 7.3 s without it). FastAPI/pydantic servers ignore fields they do
not know, so it is sent to every server but OpenAI, whose API documents no such field for /audio/speech.

`with_overrides()` applies the user's per-provider choices (speed range, stream flag, pcm rate) on top.
Profiles are plain data: `to_json()`/`from_json()` for the settings file. A base module: no I/O, no
voicegui package imports; safe on any thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from voicegui.formats import FORMATS, PCM_RATES
from voicegui.limits import SPEED_RANGE
from voicegui.openai_models import SPEECH_SPEED_RANGE, is_realtime_model

# A Kokoro voice id: two letters (language, gender), '_', a name: af_bella, bm_george, zf_xiaoxiao.
KOKORO_VOICE = re.compile(r"^[a-z]{2}_[a-z0-9]+$")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class KnownServer:
    """One row of the table. `speed_range` None: the server's range is not known (0.25..4 is allowed and
    called unverified); `formats` None: not known which of the six formats it sends."""

    kind: str
    label: str
    speed_range: tuple[float, float] | None
    send_stream: bool
    formats: tuple[str, ...] | None
    blends: bool = False  # Kokoro voice blends: af_bella(2)+af_sky(1)
    lang_code: bool = False  # Kokoro's `lang_code` field


KOKORO_FASTAPI = "kokoro-fastapi"  # it also answers /dev/captioned_speech with word timestamps

KNOWN_SERVERS: dict[str, KnownServer] = {s.kind: s for s in (
    KnownServer("openai", "OpenAI", SPEECH_SPEED_RANGE, False, tuple(FORMATS)),
    # our own server (server/app.py): owned_by "voicegui-<engine>", checks speed against limits.SPEED_RANGE
    KnownServer("voicegui", "the built-in server", SPEED_RANGE, False, tuple(FORMATS)),
    # Kokoro-FastAPI's OpenAISpeechRequest: speed ge=0.25 le=4.0, stream default true, lang_code, six formats
    KnownServer(KOKORO_FASTAPI, "Kokoro-FastAPI", (0.25, 4.0), True, tuple(FORMATS), blends=True,
                lang_code=True),
    # Kokoro voices from a server that does not say it is Kokoro-FastAPI (Kokoro ONNX servers): blends and
    # lang_code as Kokoro takes them, limits unknown
    KnownServer("kokoro", "a Kokoro server", None, True, None, blends=True, lang_code=True),
    KnownServer("localai", "LocalAI", None, True, None),
)}


@dataclass(frozen=True)
class ServerProfile:
    """What voicegui assumes of one server. `evidence` says what identified it (shown to the user)."""

    kind: str = UNKNOWN
    label: str = "an unidentified server"
    evidence: str = ""
    models_listed: bool = False
    speed_range: tuple[float, float] = SPEED_RANGE
    speed_verified: bool = False
    send_stream: bool = True
    offers_realtime: bool = False
    formats: tuple[str, ...] | None = None
    blends: bool = False
    lang_code: bool = False
    pcm_rates: dict[str, int] = field(default_factory=dict)  # model id -> Hz, as /models says
    overridden: tuple[str, ...] = ()  # which values the user set (with_overrides)

    def pcm_rate_for(self, model: str) -> int | None:
        return self.pcm_rates.get(model)

    def summary(self) -> str:
        """One line for the provider panel and `voicegui voices --profile`."""
        lo, hi = self.speed_range
        speed = f"speed {lo:g}–{hi:g}"
        if "speed" in self.overridden:
            speed += " (yours)"
        elif not self.speed_verified:
            speed += " (unverified)"
        parts = [speed, 'sends "stream": true' if self.send_stream else 'no "stream" field',
                 "formats unverified" if self.formats is None else f"formats {', '.join(self.formats)}"]
        if self.pcm_rates:
            parts.append("pcm " + ", ".join(f"{m} {r} Hz" for m, r in sorted(self.pcm_rates.items())))
        if self.offers_realtime:
            parts.append("Realtime models")
        if not self.models_listed:
            parts.append("no model list: type the model id")
        head = self.label[0].upper() + self.label[1:]
        return f"{head}" + (f" ({self.evidence})" if self.evidence else "") + ": " + "; ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["speed_range"] = list(self.speed_range)
        out["formats"] = None if self.formats is None else list(self.formats)
        out["overridden"] = list(self.overridden)
        return out


def from_json(data: Any) -> ServerProfile:
    """A profile from `to_json()`'s output; ValueError naming the first bad field."""
    if not isinstance(data, Mapping):
        raise ValueError("a server profile must be a JSON object")
    base = ServerProfile()
    values: dict[str, Any] = {}
    for key in ("kind", "label", "evidence"):
        if key in data:
            if not isinstance(data[key], str) or len(data[key]) > 200:
                raise ValueError(f"the profile's {key} must be text")
            values[key] = data[key]
    for key in ("models_listed", "speed_verified", "send_stream", "offers_realtime", "blends", "lang_code"):
        if key in data:
            if not isinstance(data[key], bool):
                raise ValueError(f"the profile's {key} must be true or false")
            values[key] = data[key]
    if "speed_range" in data:
        values["speed_range"] = _speed_range(data["speed_range"])
    if "formats" in data and data["formats"] is not None:
        fmts = data["formats"]
        if not isinstance(fmts, list) or not all(isinstance(f, str) and f in FORMATS for f in fmts):
            raise ValueError(f"the profile's formats must be a list of {', '.join(FORMATS)}")
        values["formats"] = tuple(fmts)
    elif "formats" in data:
        values["formats"] = None
    if "pcm_rates" in data:
        rates = data["pcm_rates"]
        if not isinstance(rates, Mapping) or not all(isinstance(m, str) and _is_rate(r) for m, r in rates.items()):
            raise ValueError("the profile's pcm_rates must map model ids to sample rates")
        values["pcm_rates"] = dict(rates)
    if "overridden" in data:
        if not isinstance(data["overridden"], list) or not all(isinstance(x, str) for x in data["overridden"]):
            raise ValueError("the profile's overridden must be a list of names")
        values["overridden"] = tuple(data["overridden"])
    return replace(base, **values)


def _is_rate(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in PCM_RATES


def _speed_range(v: Any) -> tuple[float, float]:
    lo_hi = SPEED_RANGE
    if (isinstance(v, (list, tuple)) and len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and lo_hi[0] <= v[0] < v[1] <= lo_hi[1]):
        return float(v[0]), float(v[1])
    raise ValueError(f"a speed range must be two numbers, low < high, within {lo_hi[0]:g}..{lo_hi[1]:g}")


# --- identification ------------------------------------------------------------------------------------------

def _model_entries(payload: Any) -> list[Mapping[str, Any]]:
    data = payload.get("data") if isinstance(payload, Mapping) else payload
    return [m for m in data if isinstance(m, Mapping)] if isinstance(data, list) else []


def _owners(payload: Any) -> set[str]:
    return {str(m["owned_by"]).strip().lower() for m in _model_entries(payload) if isinstance(m.get("owned_by"), str)}


def announced_pcm_rates(payload: Any) -> dict[str, int]:
    """model id -> sample rate, for model entries that carry one (`sample_rate`, `sampling_rate`, or either
    under `audio` / `metadata`)."""
    out: dict[str, int] = {}
    for m in _model_entries(payload):
        if not isinstance(m.get("id"), str):
            continue
        for holder in (m, m.get("audio"), m.get("metadata")):
            if not isinstance(holder, Mapping):
                continue
            rate = holder.get("sample_rate", holder.get("sampling_rate"))
            if _is_rate(rate):
                out[m["id"]] = rate
                break
    return out


def _which(payload: Any, server_header: str, voice_ids: Iterable[str], is_openai: bool) -> tuple[str, str]:
    """(kind, evidence)."""
    if is_openai:
        return "openai", "api.openai.com"
    owners = _owners(payload)
    for owner in sorted(owners):
        if owner.startswith("voicegui"):
            return "voicegui", f"owned_by '{owner}' in /models"
    if "kokoro" in owners:
        return KOKORO_FASTAPI, "owned_by 'kokoro' in /models"
    header = server_header.lower()
    if "localai" in owners or "localai" in header:
        return "localai", "owned_by 'localai' in /models" if "localai" in owners else f"Server: {server_header}"
    ids = list(voice_ids)
    kokoro = [v for v in ids if KOKORO_VOICE.match(v)]
    if ids and len(kokoro) * 2 > len(ids):
        return "kokoro", f"Kokoro voice names ({kokoro[0]}, ...)"
    return UNKNOWN, ""


def identify(models_payload: Any, *, models_listed: bool, server_header: str = "",
             voice_ids: Iterable[str] = (), is_openai: bool = False) -> ServerProfile:
    """The profile of a server from what it said (see the module docstring). `models_listed`: /models gave
    a usable model list (its ids are in `models_payload`)."""
    kind, evidence = _which(models_payload, server_header, voice_ids, is_openai)
    ids = [m["id"] for m in _model_entries(models_payload) if isinstance(m.get("id"), str)]
    realtime = is_openai or any(is_realtime_model(i) for i in ids)
    known = KNOWN_SERVERS.get(kind)
    if known is None:
        return ServerProfile(models_listed=models_listed, offers_realtime=realtime,
                             pcm_rates=announced_pcm_rates(models_payload))
    return ServerProfile(
        kind=kind, label=known.label, evidence=evidence, models_listed=models_listed or is_openai,
        speed_range=known.speed_range or SPEED_RANGE, speed_verified=known.speed_range is not None,
        send_stream=known.send_stream, offers_realtime=realtime, formats=known.formats, blends=known.blends,
        lang_code=known.lang_code, pcm_rates=announced_pcm_rates(models_payload))


def openai_profile() -> ServerProfile:
    """OpenAI's, known without asking (its key may not be entered yet)."""
    return identify(None, models_listed=True, is_openai=True)


def builtin_profile() -> ServerProfile:
    """voicegui's own server's, known before it answers (the window's default provider)."""
    known = KNOWN_SERVERS["voicegui"]
    return ServerProfile(kind=known.kind, label=known.label, evidence="built in", models_listed=True,
                         speed_range=known.speed_range or SPEED_RANGE, speed_verified=True,
                         send_stream=known.send_stream, formats=known.formats)


# --- the user's overrides -------------------------------------------------------------------------------------

OVERRIDE_KEYS = ("speed_min", "speed_max", "stream", "pcm_rate")


def override_problem(options: Mapping[str, Any]) -> str | None:
    """Why a provider's override values are unusable (one sentence), or None."""
    lo, hi = options.get("speed_min"), options.get("speed_max")
    if (lo is None) != (hi is None):
        return "give both ends of the speed range, or neither"
    if lo is not None:
        try:
            _speed_range([lo, hi])
        except ValueError as exc:
            return str(exc)
    if options.get("stream") not in (None, True, False):
        return "the stream override must be true, false or empty (as detected)"
    rate = options.get("pcm_rate")
    if rate is not None and not _is_rate(rate):
        return f"the pcm rate must be {PCM_RATES.start}..{PCM_RATES.stop - 1} Hz, not {rate!r}"
    return None


def with_overrides(profile: ServerProfile, options: Mapping[str, Any], model: str = "") -> ServerProfile:
    """`profile` with the user's overrides applied (unusable ones are ignored: settings validates them)."""
    if override_problem(options) is not None:
        return profile
    changed: dict[str, Any] = {}
    names = list(profile.overridden)
    if options.get("speed_min") is not None:
        changed["speed_range"] = (float(options["speed_min"]), float(options["speed_max"]))
        names.append("speed")
    if options.get("stream") is not None:
        changed["send_stream"] = bool(options["stream"])
        names.append("stream")
    if options.get("pcm_rate") is not None and model:
        changed["pcm_rates"] = {**profile.pcm_rates, model: int(options["pcm_rate"])}
        names.append("pcm_rate")
    return replace(profile, overridden=tuple(dict.fromkeys(names)), **changed) if changed else profile
