"""Settings: everything the window remembers between runs (but the API key), and where the key lives.

`Settings` is one dataclass, validated by `validate()` with messages a user can act on. It is stored as
JSON in `app_dirs.config_dir()/settings.json` — platformdirs' user_config_dir("voicegui"), or $VOICEGUI_CONFIG_DIR
when set (tests, portable installs). Saving writes a temporary file in the same directory and
`os.replace`s it, so a crash mid-save never leaves a half-written file. A file that is not UTF-8 text, not
valid JSON, not a JSON object, nested absurdly deep or larger than `MAX_SETTINGS_BYTES` is moved aside to
`settings.json.corrupt-<timestamp>` (files.set_aside) and the defaults are used; a field with a bad value
(of any JSON type) falls back to its default. Either way `load()` returns one message for the window to show
and never raises.

Per provider it also keeps the server profile last detected (`profiles`, voicegui.server_profile) and the
user's own choices for that server (`provider_options`: speed range, the stream flag and pcm rate
overrides, Kokoro's lang_code, the extra JSON body as typed, the audio transport: plain audio or
Server-Sent Events), each validated like every other field.

The API key is never in that file. `KeyStore` keeps it in the system keyring (service "voicegui", user =
provider id), falls back to $OPENAI_API_KEY for the OpenAI provider, and, when no keyring backend works
(headless machines: keyring's "fail" backend), keeps keys in memory only and says so.

Threads: plain data and blocking file/keyring calls; the window calls them on its GUI thread (they are
small and local). Qt-free.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from voicegui.app_dirs import config_dir
from voicegui.files import PRIVATE, atomic_write, set_aside
from voicegui.formats import FORMATS
from voicegui.limits import (
    MAX_BLOCKSIZE,
    MAX_CHUNK_BYTES,
    MAX_MAX_BUFFER_S,
    MAX_PREBUFFER_MS,
    MAX_SPEED,
    MIN_MAX_BUFFER_S,
    MIN_SPEED,
)
from voicegui.providers import BUILTIN, OPENAI, PROVIDERS, key_owner
from voicegui.request_extras import ExtrasError, lang_code_problem, parse_extra_body
from voicegui.server_profile import OVERRIDE_KEYS, ServerProfile, from_json as profile_from_json, override_problem
from voicegui.speech_sse import STREAM_FORMATS

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
KEYRING_SERVICE = "voicegui"
KEY_ENV = "OPENAI_API_KEY"
# A real settings file is a few KB (instructions are capped at 4096 characters); a bigger one is not ours,
# and reading it whole would only cost memory.
MAX_SETTINGS_BYTES = 1024 * 1024
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*\Z")
_MAX_PROBLEM_CHARS = 200  # a hostile value must not turn the start-up notice into a wall of text


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def _default_base_urls() -> dict[str, str]:
    return {pid: p.base_url for pid, p in PROVIDERS.items() if p.url_editable}


@dataclass
class Settings:
    """What the window remembers. Model and voice are remembered per provider: switching from OpenAI to
    the built-in voices and back should not lose "gpt-4o-mini-tts"/"coral"."""

    provider: str = BUILTIN
    base_urls: dict[str, str] = field(default_factory=_default_base_urls)
    models: dict[str, str] = field(default_factory=dict)  # provider id -> model ("" / missing: its default)
    voices: dict[str, str] = field(default_factory=dict)  # provider id -> voice
    # provider id -> the user's choices for that server (keys: PROVIDER_OPTION_KEYS; absent: as detected)
    provider_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # provider id -> the server profile last detected (ServerProfile.to_json())
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = "pcm"
    speed: float = 1.0
    instructions: str = ""
    # tuning (next Speak)
    chunk_bytes: int | None = None  # None: hand bytes on as they arrive
    prebuffer_ms: float | None = None  # None: auto
    max_buffer_s: float = 10.0
    latency: str | float = "low"
    blocksize: int = 0
    device: str | None = None  # PortAudio device name; None: the system default
    volume: float = 1.0
    # network simulator (built-in provider only)
    sim_first_byte_delay_ms: float = 0.0
    sim_throughput_x: float | None = None  # None: as fast as the server encodes
    sim_jitter_ms: float = 0.0
    # history: cached audio beyond this is evicted, oldest first (0: keep no audio, only the measurements)
    history_max_mb: float = 200.0
    # window
    window_geometry: str | None = None  # QWidget.saveGeometry() as base64

    def model_for(self, provider: str) -> str:
        return self.models.get(provider) or PROVIDERS[provider].default_model

    def voice_for(self, provider: str) -> str:
        return self.voices.get(provider) or PROVIDERS[provider].default_voice

    def base_url_for(self, provider: str) -> str:
        return self.base_urls.get(provider) or PROVIDERS[provider].base_url

    def options_for(self, provider: str) -> dict[str, Any]:
        return dict(self.provider_options.get(provider) or {})

    def profile_for(self, provider: str) -> ServerProfile | None:
        """The stored profile (validated on load), or None if none was detected yet."""
        data = self.profiles.get(provider)
        return profile_from_json(data) if data else None

    def validate(self) -> None:
        """Raise ValueError naming the first bad field and what it accepts."""
        for name, message in _field_errors(self):
            raise ValueError(f"{name}: {message}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_field(name: str, v: Any) -> str | None:
    """Why `v` is not a valid value for field `name` (None if it is)."""
    if name == "provider":
        # isinstance first: `[] in PROVIDERS` raises TypeError (unhashable), and the file decides the type.
        return None if isinstance(v, str) and v in PROVIDERS else f"must be one of {', '.join(PROVIDERS)}, not {v!r}"
    if name in ("base_urls", "models", "voices"):
        if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
            return "must map provider ids to text"
        if name == "base_urls":
            for pid, url in v.items():
                if url and not url.startswith(("http://", "https://", "ws://", "wss://")):
                    return f"the {pid} base URL must start with http:// or https://, not {url!r}"
        return None
    if name == "provider_options":
        return _options_problem(v)
    if name == "profiles":
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            return "must map provider ids to server profiles"
        for pid, data in v.items():
            try:
                profile_from_json(data)
            except ValueError as exc:
                return f"{pid}: {exc}"
        return None
    if name == "format":
        return None if isinstance(v, str) and v in FORMATS else f"must be one of {', '.join(FORMATS)}, not {v!r}"
    if name == "speed":
        if _is_num(v) and MIN_SPEED <= v <= MAX_SPEED:
            return None
        return f"must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {v!r}"
    if name == "instructions":
        if not isinstance(v, str):
            return "must be text"
        return None if len(v) <= 4096 else f"must be at most 4096 characters, not {len(v)}"
    if name == "chunk_bytes":
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CHUNK_BYTES)
        return None if ok else f"must be empty (as bytes arrive) or 1..{MAX_CHUNK_BYTES} bytes, not {v!r}"
    if name == "prebuffer_ms":
        ok = v is None or (_is_num(v) and 0 <= v <= MAX_PREBUFFER_MS)
        return None if ok else f"must be empty (auto) or 0..{MAX_PREBUFFER_MS} ms, not {v!r}"
    if name == "max_buffer_s":
        ok = _is_num(v) and MIN_MAX_BUFFER_S <= v <= MAX_MAX_BUFFER_S
        return None if ok else f"must be {MIN_MAX_BUFFER_S:g}..{MAX_MAX_BUFFER_S:g} s, not {v!r}"
    if name == "latency":
        if v in ("low", "high") or (_is_num(v) and 0 < v <= 2):
            return None
        return f"must be low, high or 0..2 seconds, not {v!r}"
    if name == "blocksize":
        ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_BLOCKSIZE
        return None if ok else f"must be 0 (automatic) .. {MAX_BLOCKSIZE} frames, not {v!r}"
    if name == "device":
        return None if v is None or isinstance(v, str) else f"must be a device name or empty, not {v!r}"
    if name == "volume":
        return None if _is_num(v) and 0 <= v <= 1 else f"must be 0..1, not {v!r}"
    if name in ("sim_first_byte_delay_ms", "sim_jitter_ms"):
        return None if _is_num(v) and 0 <= v <= 60000 else f"must be 0..60000 ms, not {v!r}"
    if name == "sim_throughput_x":
        ok = v is None or (_is_num(v) and 0.05 <= v <= 1000)
        return None if ok else f"must be empty (unlimited) or 0.05..1000, not {v!r}"
    if name == "history_max_mb":
        return None if _is_num(v) and 0 <= v <= 100_000 else f"must be 0..100000 MB, not {v!r}"
    if name == "window_geometry":
        # The window decodes it with .encode("ascii") + QByteArray.fromBase64: anything else would crash it.
        return None if v is None or (isinstance(v, str) and _BASE64.match(v)) else "must be base64 text"
    return None


PROVIDER_OPTION_KEYS = (*OVERRIDE_KEYS, "lang_code", "extra_body", "stream_format")


def _options_problem(v: Any) -> str | None:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(o, dict) for k, o in v.items()):
        return "must map provider ids to objects"
    for pid, options in v.items():
        unknown = [k for k in options if k not in PROVIDER_OPTION_KEYS]
        if unknown:
            return f"{pid}: unknown option {unknown[0]!r} (known: {', '.join(PROVIDER_OPTION_KEYS)})"
        problem = override_problem(options)
        if problem is None and not isinstance(options.get("lang_code", ""), str):
            problem = "the language code must be text"
        if problem is None:
            problem = lang_code_problem(options.get("lang_code", ""))
        if problem is None and options.get("stream_format", "audio") not in STREAM_FORMATS:
            problem = f"the audio transport must be one of {', '.join(STREAM_FORMATS)}"
        if problem is None:
            extra = options.get("extra_body", "")
            if not isinstance(extra, str):
                problem = "the extra JSON body must be stored as text"
            else:
                try:
                    parse_extra_body(extra)
                except ExtrasError as exc:
                    problem = str(exc)
        if problem:
            return f"{pid}: {problem}"
    return None


def _field_errors(s: Settings) -> list[tuple[str, str]]:
    out = []
    for f in fields(s):
        message = _check_field(f.name, getattr(s, f.name))
        if message:
            out.append((f.name, message))
    return out


def from_json(data: Any) -> tuple[Settings, list[str]]:
    """Settings from a parsed JSON object: unknown keys are ignored (a newer version wrote them), a bad
    value falls back to its default; returns the settings and one message per field that did."""
    if not isinstance(data, dict):
        raise ValueError("the settings file does not hold a JSON object")
    s = Settings()
    problems: list[str] = []
    for f in fields(s):
        if f.name not in data:
            continue
        value = data[f.name]
        if isinstance(value, int) and not isinstance(value, bool) and f.name in (
                "speed", "max_buffer_s", "volume", "prebuffer_ms", "sim_first_byte_delay_ms", "sim_jitter_ms",
                "sim_throughput_x", "history_max_mb"):
            try:
                value = float(value)
            except OverflowError:
                pass  # an int beyond any float: the range check below refuses it
        message = _check_field(f.name, value)
        if message:
            problem = f"{f.name} {message}"
            if len(problem) > _MAX_PROBLEM_CHARS:
                problem = problem[:_MAX_PROBLEM_CHARS - 3] + "..."
            problems.append(problem)
            continue
        if f.name == "base_urls":
            value = {**_default_base_urls(), **value}
        setattr(s, f.name, value)
    return s, problems


@dataclass
class Loaded:
    settings: Settings
    message: str | None  # for the user: the file was corrupt / some values were reset


def load(path: Path | None = None) -> Loaded:
    """Read the settings; never raises for a missing, unreadable or corrupt file (see module docstring)."""
    path = path or settings_path()
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        return Loaded(Settings(), None)
    except OSError as exc:
        return Loaded(Settings(), f"Could not read the settings file {path}: {exc.strerror or exc}; "
                                  "using the defaults.")
    data, problem = _parse(raw)
    if data is not None:
        settings, problems = from_json(data)
        if problems:
            return Loaded(settings, "Some saved settings were invalid and were reset: " + "; ".join(problems) + ".")
        return Loaded(settings, None)
    try:
        aside = set_aside(path)
    except OSError as move_exc:
        return Loaded(Settings(), f"The settings file {path} is damaged ({problem}) and could not be moved "
                                  f"aside ({move_exc.strerror or move_exc}); using the defaults.")
    log.warning("settings file %s is corrupt (%s); moved to %s", path, problem, aside)
    return Loaded(Settings(), f"The settings file was damaged ({problem}); it was moved to {aside} and the "
                              "defaults are used.")


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The file's JSON object, or None and why it is not a settings file at all (whatever its values)."""
    if len(raw) > MAX_SETTINGS_BYTES:
        return None, f"it is larger than {MAX_SETTINGS_BYTES // 1024} KB"
    try:
        text = raw.decode("utf-8-sig")  # -sig: a BOM some editors add is not damage
    except UnicodeDecodeError as exc:
        return None, f"it is not UTF-8 text: byte {exc.start} is 0x{raw[exc.start]:02x}"
    try:
        data = json.loads(text)
    except RecursionError:  # the C scanner recurses per [ or {: a hostile file can nest past the limit
        return None, "it nests too deeply to be a settings file"
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return None, str(exc)
    if not isinstance(data, dict):
        return None, "it holds no JSON object"
    return data, ""


def save(settings: Settings, path: Path | None = None) -> None:
    """Validate and write atomically (temp file in the same directory + os.replace). Raises ValueError for
    invalid settings, OSError if the directory cannot be written."""
    settings.validate()
    data = json.dumps(settings.to_json(), indent=2, sort_keys=True)
    atomic_write(path or settings_path(), data.encode("utf-8"), PRIVATE)


# --- the API key -------------------------------------------------------------------------------------------

_NOT_LOOKED_UP = object()


class KeyStore:
    """API keys per provider: the system keyring when it works, else memory only (see `warning`).

    `get()` falls back to $OPENAI_API_KEY for the OpenAI provider. Keys are never logged.
    """

    def __init__(self) -> None:
        self._memory: dict[str, str] = {}
        self._warning: str | None = None  # set once the keyring turned out unusable
        # Looked up on first use, not with the window: the built-in voices need no key, and the keyring's
        # backends (secretstorage, cryptography, jeepney's D-Bus) cost ~8-18 MB and ~0.1 s of start-up.
        self._keyring: Any = _NOT_LOOKED_UP

    def _backend(self) -> Any:
        """The keyring module when it works, else None (and `warning` says why); looked up once."""
        if self._keyring is _NOT_LOOKED_UP:
            self._keyring = None
            try:
                import keyring
                from keyring.backends import fail

                backend = keyring.get_keyring()
                if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
                    self._unusable(f"no usable keyring backend ({type(backend).__module__})")
                else:
                    self._keyring = keyring
            except ImportError as exc:
                self._unusable(f"the keyring package is missing ({exc})")
        return self._keyring

    @property
    def warning(self) -> str | None:
        self._backend()
        return self._warning

    @property
    def persistent(self) -> bool:
        return self._backend() is not None

    def _unusable(self, why: str) -> None:
        self._keyring = None
        self._warning = (f"No system keyring is available ({why}): the API key is kept in memory only and "
                        "must be entered again next time (or set OPENAI_API_KEY).")
        log.info("keyring unusable: %s", why)

    def get(self, provider: str) -> str:
        """The stored key for `provider`, else $OPENAI_API_KEY for OpenAI, else ""."""
        provider = key_owner(provider)
        key = self._memory.get(provider, "")
        if not key and self._backend() is not None:
            try:
                key = self._keyring.get_password(KEYRING_SERVICE, provider) or ""
            except Exception as exc:  # keyring backends raise their own error types (dbus, secretstorage...)
                self._unusable(f"reading failed: {type(exc).__name__}")
        if not key and provider == OPENAI:
            key = os.environ.get(KEY_ENV, "")
        return key

    def set(self, provider: str, key: str) -> None:
        """Remember `key` (empty: forget it). Falls back to memory if the keyring fails."""
        provider = key_owner(provider)
        if key:
            self._memory[provider] = key
        else:
            self._memory.pop(provider, None)
        if self._backend() is None:
            return
        try:
            if key:
                self._keyring.set_password(KEYRING_SERVICE, provider, key)
            else:
                try:
                    self._keyring.delete_password(KEYRING_SERVICE, provider)
                except self._keyring.errors.PasswordDeleteError:
                    pass  # nothing stored: already forgotten
        except Exception as exc:  # see get(): backend-specific errors, the key stays in memory
            self._unusable(f"saving failed: {type(exc).__name__}")


# --- tuning presets ----------------------------------------------------------------------------------------

TUNING_FIELDS = ("chunk_bytes", "prebuffer_ms", "max_buffer_s", "latency", "blocksize")
TUNING_PRESETS: dict[str, dict[str, Any]] = {
    # Start on the first audio the network gives; small device buffer. Underruns on a slow link.
    "Low latency": {"chunk_bytes": None, "prebuffer_ms": 50.0, "max_buffer_s": 5.0, "latency": "low",
                    "blocksize": 0},
    # The defaults: the prebuffer adapts to the measured delivery rate.
    "Balanced": {"chunk_bytes": None, "prebuffer_ms": None, "max_buffer_s": 10.0, "latency": "low",
                 "blocksize": 0},
    # A second of audio before starting, a big device buffer: survives a jittery or slow network.
    "Robust": {"chunk_bytes": 4096, "prebuffer_ms": 1000.0, "max_buffer_s": 30.0, "latency": "high",
               "blocksize": 1024},
}
DEFAULT_PRESET = "Balanced"
