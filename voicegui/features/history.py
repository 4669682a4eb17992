"""History of Speaks: a JSON-lines index of what was said and measured, plus a bounded cache of the audio.

Every Speak becomes one `HistoryEntry` (time, provider, base URL, model, voice, format, buffer settings,
TTFA, underruns, duration, bytes, error) in `<root>/index.jsonl`, and the response body exactly as the server
sent it (in its own format: pcm, wav, mp3, ...) in `<root>/audio/<id>.<ext>`. The root is platformdirs'
user_cache_dir("voicegui")/history, or $VOICEGUI_CACHE_DIR/history when set (tests, portable installs).

Timings (features/timings.py: when each word is heard) are kept beside the audio as `<id>.timings.json`
(`save_timings`; at most `MAX_TIMINGS_BYTES` each, and gone with the audio when it is evicted or deleted);
`timings()` reads them, or, when none were kept, estimates them from the cached audio and keeps those;
`save_captions()` writes them as SRT or WebVTT.

Bound: the cached audio may use at most `max_bytes` (default 200 MB). Adding audio beyond that evicts the
oldest entries' audio; their index lines stay, marked `evicted`, so the measurements outlive the sound. The
index itself is not counted (a few hundred bytes per Speak).

Two writers (two windows, a window and `voicegui lineup --history`): every change happens under an exclusive
`fcntl.flock` on `<root>/index.lock` and starts by re-reading the index, so nobody rewrites it from a stale
memory. `add` appends one line (and writes its audio) under that lock; delete, clear and eviction rewrite the
index (temporary file + `os.replace`) under it. Reads re-read the index when its size, inode or mtime changed,
so a window also sees the other instance's entries.

Atomicity: audio files and rewritten indexes go to a temporary file in the same directory and are
`os.replace`d; an append that fails (a full disk) is truncated back to where it started. The audio is written
before the index names it; an audio file the index does not name (a crash between the two) is harmless: it is
not counted, and `delete_orphans()` removes it.

Damage: the index is data from disk, not trusted. A line that is not UTF-8 or JSON, has a field of the wrong
type (an int where a float belongs is converted; anything ambiguous is not), repeats an id, or carries an id
that is not `[0-9a-z-]{1,64}` (ids become file names: "../../x" must never reach the file system) is left out;
the whole old file is then renamed next to itself (`index.jsonl.corrupt-<timestamp>`, files.set_aside), the
usable entries are written as the new index, and `notice` says so in one sentence. Every method taking an id
refuses one of another shape, and audio is only read from a path that resolves inside `<root>/audio`.

Secrets: an entry has no API key field, and the base URL is stored without user:password@ and without its
query string (some gateways put keys there). Only what `HistoryEntry` names is ever written.

Threads: blocking file I/O, meant for the GUI thread or a worker (the files are local and small-ish; the
window may prefer `asyncio.to_thread(store.add, ...)` for multi-MB bodies). One `threading.Lock` per store
serialises calls, so the asyncio loop and the GUI thread may share a store; the file lock (above) serialises
processes. Qt-free, POSIX (fcntl).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import re
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicegui.app_dirs import cache_dir
from voicegui.crash import redact
from voicegui.features.captions import write_captions
from voicegui.features.timings import Timings, estimate
from voicegui.files import PRIVATE, atomic_write, set_aside
from voicegui.formats import EXTENSIONS
from voicegui.wavfile import wav_bytes

if TYPE_CHECKING:
    from voicegui.stream.player import HistoryHook, Playback

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
INDEX_FILE = "index.jsonl"
LOCK_FILE = "index.lock"
AUDIO_DIR = "audio"
TIMINGS_SUFFIX = ".timings.json"
MAX_TIMINGS_BYTES = 8 * 1024 * 1024  # ~100,000 words; a bigger file is not ours
# What _new_id() makes (digits, lowercase hex, one dash): an id is part of a file name, so nothing else passes.
_ID = re.compile(r"[0-9a-z-]{1,64}\Z")

class HistoryError(Exception):
    """A history operation failed; str() is one sentence for the user."""


def default_root() -> Path:
    """The history under the cache directory (voicegui.app_dirs)."""
    return cache_dir() / "history"


def safe_base_url(base_url: str) -> str:
    """The base URL without credentials: user:password@ and the query/fragment are dropped."""
    try:
        parts = urllib.parse.urlsplit(base_url.strip())
    except ValueError:
        return ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass
class HistoryEntry:
    """One Speak as recorded. Times are wall-clock (time.time()) so they mean something after a restart."""

    time: float
    provider: str  # "builtin", "openai", "kokoro", "custom", or a free label
    base_url: str
    model: str
    voice: str
    format: str  # requested response_format
    text: str = ""
    speed: float | None = None
    chunk_bytes: int | None = None
    prebuffer_ms: float | None = None  # the setting (None: auto)
    max_buffer_s: float | None = None
    ttfa_ms: float | None = None
    underruns: int = 0
    duration_s: float = 0.0  # audio played
    bytes: int = 0  # response body bytes received
    detected_format: str | None = None
    error: str | None = None
    id: str = ""
    audio_bytes: int = 0  # size of the cached original (0 when none or evicted)
    evicted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # room for the UI (e.g. a line-up label)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> HistoryEntry:
        """An entry from one index line's parsed JSON. Unknown keys (a newer version wrote them) are dropped; an
        int where a float belongs (and an integral float or 0/1 where an int or bool belongs) is converted;
        any other wrong type, a missing required field, a non-finite or negative number, or an id that is not
        a history id raises ValueError naming the field. The result always has the declared types."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                values[f.name] = _coerce(f.name, data[f.name])
        missing = [name for name in _REQUIRED if name not in values]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if not valid_id(values.get("id")):
            raise ValueError(f"id {_short(values.get('id'))} is not a history id")
        return cls(**values)

    @classmethod
    def from_speak(cls, request: Any, metrics: Any, provider: str = "", prebuffer_ms: float | None = None,
                   max_buffer_s: float | None = None, when: float | None = None) -> HistoryEntry:
        """An entry for one finished Speak: `request` a SpeechRequest, `metrics` its SessionMetrics (or None).

        The request's api_key is deliberately not read."""
        m = metrics
        return cls(
            time=time.time() if when is None else when,
            provider=provider,
            base_url=redact(safe_base_url(request.base_url)),
            model=request.model,
            voice=request.voice,
            # The metrics' format: a Realtime model sends pcm whatever the request named.
            format=request.response_format if m is None else m.requested_format,
            text=request.text,
            speed=request.speed,
            chunk_bytes=request.chunk_bytes,
            prebuffer_ms=prebuffer_ms,
            max_buffer_s=max_buffer_s,
            ttfa_ms=None if m is None else m.ttfa_ms,
            underruns=0 if m is None else m.underrun_episodes,
            duration_s=0.0 if m is None else m.audio_played_s,
            bytes=0 if m is None else m.bytes_received,
            detected_format=None if m is None else m.detected_format,
            error=None if m is None or m.error is None else redact(m.error),  # a server may echo the key
        )


_REQUIRED = ("time", "provider", "base_url", "model", "voice", "format")
_STR = {"provider", "base_url", "model", "voice", "format", "text", "id"}
_OPT_STR = {"detected_format", "error"}
_FLOAT = {"time", "duration_s"}
_OPT_FLOAT = {"speed", "prebuffer_ms", "max_buffer_s", "ttfa_ms"}
_COUNT = {"underruns", "bytes", "audio_bytes"}
_OPT_COUNT = {"chunk_bytes"}


def valid_id(entry_id: Any) -> bool:
    """True for what `HistoryStore` hands out as ids; they become file names, so nothing else is accepted."""
    return isinstance(entry_id, str) and _ID.match(entry_id) is not None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(name: str, v: Any) -> Any:
    """`v` as field `name`'s declared type, converted only where that is unambiguous; else ValueError."""
    if v is None and name in _OPT_STR | _OPT_FLOAT | _OPT_COUNT:
        return None
    if name in _STR | _OPT_STR:
        if isinstance(v, str):
            return v
        raise ValueError(f"{name} must be text, not {_short(v)}")
    if name in _FLOAT | _OPT_FLOAT:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            try:
                number = float(v)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
        raise ValueError(f"{name} must be a finite number, not {_short(v)}")
    if name in _COUNT | _OPT_COUNT:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            return v
        raise ValueError(f"{name} must be a whole number >= 0, not {_short(v)}")
    if name == "evicted":
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise ValueError(f"evicted must be true or false, not {_short(v)}")
    if name == "extra":
        if isinstance(v, dict):
            return v
        raise ValueError(f"extra must be an object, not {_short(v)}")
    raise ValueError(f"unknown field {name}")  # a new field without a rule here: a bug, caught by the tests


def entry_pcm_rate(entry: HistoryEntry) -> int | None:
    """The rate a raw pcm entry was played at (the history hook records it: the body carries no header)."""
    rate = entry.extra.get("pcm_rate")
    return rate if isinstance(rate, int) and not isinstance(rate, bool) and rate > 0 else None


def decode_all(data: bytes, fmt: str, pcm_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole response body with the streaming decoder: (float32 mono samples, sample rate). `pcm_rate`:
    what a raw pcm body is (entry_pcm_rate), since it carries no header.

    Raises voicegui.decode.stream_decoder.DecodeError if the bytes hold no audio."""
    from voicegui.decode.stream_decoder import PCM_RATE, create_decoder

    dec = create_decoder(fmt)
    dec.set_raw_pcm_format(pcm_rate)
    parts = [dec.feed(data), dec.flush()]
    samples = np.concatenate([p for p in parts if len(p)] or [np.zeros(0, dtype=np.float32)])
    return samples.astype(np.float32, copy=False), dec.sample_rate or PCM_RATE


class HistoryStore:
    """The index and audio cache under `root` (default: `default_root()`); see the module docstring.

    `notice`: one sentence for the user when reading the index found damage (None when it did not); the
    window shows it at start-up."""

    def __init__(self, root: Path | str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.root = Path(root) if root is not None else default_root()
        self.max_bytes = max_bytes
        self.notice: str | None = None
        self._lock = threading.Lock()
        self._entries: list[HistoryEntry] = []
        # (inode, size, mtime_ns) of the index as last read or written; None: read it again before use
        self._seen: tuple[int, int, int] | None = None
        with self._lock, self._file_lock():
            self._reload()

    # --- public ---------------------------------------------------------------------------------------
    def add(self, entry: HistoryEntry, original: bytes = b"") -> str:
        """Record `entry` and cache `original` (the body exactly as received); evict to the bound; its id."""
        entry = dataclasses.replace(entry, extra=dict(entry.extra))
        entry.id = self._new_id()
        entry.base_url = safe_base_url(entry.base_url)  # also when the caller built the entry by hand
        entry.audio_bytes = 0
        entry.evicted = False
        with self._lock, self._file_lock(), self._reload_on_failure():
            self._reload()
            if original:
                atomic_write(self._audio_path(entry), bytes(original), PRIVATE)
                entry.audio_bytes = len(original)
            self._entries.append(entry)
            try:
                if self._evict_to_bound():
                    self._write_index()
                else:
                    self._append(entry)
            except OSError:
                self._audio_path(entry).unlink(missing_ok=True)  # no index line names it: not an orphan
                raise
            return entry.id

    def entries(self) -> list[HistoryEntry]:
        """Copies of every entry, oldest first (including what another process added)."""
        with self._lock:
            self._refresh()
            return [dataclasses.replace(e, extra=dict(e.extra)) for e in self._entries]

    def get(self, entry_id: str) -> HistoryEntry:
        with self._lock:
            self._refresh()
            found = self._find(entry_id)
            return dataclasses.replace(found, extra=dict(found.extra))

    def original(self, entry_id: str) -> bytes:
        """The cached response body, byte for byte. HistoryError if evicted or never cached."""
        with self._lock:
            self._refresh()
            entry = self._find(entry_id)
            path = self._audio_path(entry)
            if entry.evicted or entry.audio_bytes == 0:
                why = "was evicted to keep the cache within its size limit" if entry.evicted else "was not kept"
                raise HistoryError(f"The audio of {entry.voice} at {_when(entry)} {why}.")
            audio_dir = (self.root / AUDIO_DIR).resolve()
            if path.resolve().parent != audio_dir:  # a symlink planted in the cache
                raise HistoryError(f"The cached audio of {entry.voice} at {_when(entry)} points outside the "
                                   f"cache ({path}); it is not read.")
            try:
                return path.read_bytes()
            except FileNotFoundError as exc:
                raise HistoryError(f"The cached audio of {entry.voice} at {_when(entry)} is missing "
                                   f"({path}).") from exc

    def save_original(self, entry_id: str, path: Path | str) -> Path:
        """Write the exact bytes the server sent to `path` (pcm stays raw s16le 24 kHz mono)."""
        data = self.original(entry_id)
        target = Path(path)
        atomic_write(target, data)
        return target

    def save_played_wav(self, entry_id: str, path: Path | str) -> Path:
        """Decode the cached bytes (the same decoder as playback) and write a 16-bit mono WAV."""
        entry = self.get(entry_id)
        samples, rate = decode_all(self.original(entry_id), entry.detected_format or entry.format,
                                   entry_pcm_rate(entry))
        target = Path(path)
        atomic_write(target, wav_bytes(samples, rate))
        return target

    def save_timings(self, entry_id: str, timings: Timings) -> None:
        """Keep `timings` beside the entry's audio (replacing any); HistoryError if they are not of its text or
        too big, or the entry has no audio to go with."""
        data = json.dumps(timings.to_json(), ensure_ascii=False).encode("utf-8")
        with self._lock:
            self._refresh()
            entry = self._find(entry_id)
            if timings.text != entry.text:
                raise HistoryError(f"These timings are of another text than the history entry {entry_id}.")
            if len(data) > MAX_TIMINGS_BYTES:
                raise HistoryError(f"The timings of {entry_id} are over {MAX_TIMINGS_BYTES // 1024 // 1024} MB; "
                                   "they are not kept.")
            if entry.evicted or entry.audio_bytes == 0:
                raise HistoryError(f"The history entry {entry_id} has no audio for timings to go with.")
            atomic_write(self._timings_path(entry), data, PRIVATE)

    def timings(self, entry_id: str) -> Timings:
        """The entry's timings: those kept, else estimated from its cached audio (and kept). HistoryError when
        there is neither (its audio was evicted or never kept)."""
        entry = self.get(entry_id)
        kept = self._read_timings(entry)
        if kept is not None:
            return kept
        samples, rate = decode_all(self.original(entry_id), entry.detected_format or entry.format,
                                   entry_pcm_rate(entry))
        made = estimate(entry.text, samples, rate)
        try:
            self.save_timings(entry_id, made)
        except (OSError, HistoryError) as exc:  # still usable now; estimated again next time
            log.warning("history: could not keep the timings of %s: %s", entry_id, exc)
        return made

    def replay_timings(self, entry_id: str) -> Timings | None:
        """timings() for a replay's highlight, or None (logged) when there are none: a replay plays without."""
        from voicegui.decode.errors import DecodeError

        try:
            return self.timings(entry_id)
        except (HistoryError, DecodeError, OSError) as exc:
            log.info("history: no timings for the replay of %s: %s", entry_id, exc)
            return None

    def save_captions(self, entry_id: str, path: Path | str) -> Path:
        """Write the entry's timings as captions, SRT or WebVTT by `path`'s extension (captions.CaptionError
        for another)."""
        return write_captions(self.timings(entry_id), path)

    def delete(self, entry_id: str) -> None:
        """Remove the entry, its audio and its timings."""
        _check_id(entry_id)
        with self._lock, self._file_lock(), self._reload_on_failure():
            self._reload()
            entry = self._find(entry_id)
            self._entries.remove(entry)
            self._audio_path(entry).unlink(missing_ok=True)
            self._timings_path(entry).unlink(missing_ok=True)
            self._write_index()

    def clear(self) -> None:
        with self._lock, self._file_lock(), self._reload_on_failure():
            self._reload()
            for entry in self._entries:
                self._audio_path(entry).unlink(missing_ok=True)
                self._timings_path(entry).unlink(missing_ok=True)
            self._entries.clear()
            self._write_index()

    def total_bytes(self) -> int:
        """Bytes of cached audio (what the bound limits)."""
        with self._lock:
            self._refresh()
            return self._total()

    def set_max_bytes(self, max_bytes: int) -> None:
        """Change the bound (a setting); evicts at once if the cache is now over it."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        with self._lock, self._file_lock(), self._reload_on_failure():
            self.max_bytes = max_bytes
            self._reload()
            if self._evict_to_bound():
                self._write_index()

    def delete_orphans(self) -> int:
        """Remove audio files no entry names (left by a crash between the audio and the index write)."""
        with self._lock, self._file_lock():
            self._reload()
            named = {p.name for e in self._entries for p in (self._audio_path(e), self._timings_path(e))}
            removed = 0
            audio = self.root / AUDIO_DIR
            if audio.is_dir():
                for p in audio.iterdir():
                    if p.name not in named and (p.is_symlink() or p.is_file()):  # a directory is not ours
                        p.unlink(missing_ok=True)
                        removed += 1
            return removed

    # --- internals ------------------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def _audio_path(self, entry: HistoryEntry) -> Path:
        # entry.id passed valid_id() (from_json, add): the name cannot leave the audio directory; the format
        # only picks an extension from a fixed table.
        return self.root / AUDIO_DIR / f"{entry.id}.{EXTENSIONS.get(entry.format, 'bin')}"

    def _timings_path(self, entry: HistoryEntry) -> Path:
        return self.root / AUDIO_DIR / f"{entry.id}{TIMINGS_SUFFIX}"

    def _read_timings(self, entry: HistoryEntry) -> Timings | None:
        """The kept timings of `entry`, or None when there are none; damaged ones are dropped (and logged)."""
        path = self._timings_path(entry)
        try:
            if path.is_symlink() or path.stat().st_size > MAX_TIMINGS_BYTES:
                raise ValueError("not a timings file of ours")
            timings = Timings.from_json(json.loads(path.read_bytes().decode("utf-8")))
            if timings.text != entry.text:
                raise ValueError("of another text")
            return timings
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("history: the timings of %s are unusable and are made again: %s", entry.id, exc)
            return None

    def _find(self, entry_id: str) -> HistoryEntry:
        _check_id(entry_id)
        for e in self._entries:
            if e.id == entry_id:
                return e
        raise HistoryError(f"No history entry {entry_id!r}.")

    def _new_id(self) -> str:
        # Sortable by time, unique without coordination (two windows may add in the same millisecond).
        return f"{time.time_ns() // 1_000_000:013d}-{secrets.token_hex(4)}"

    def _total(self) -> int:
        return sum(e.audio_bytes for e in self._entries if not e.evicted)

    def _evict_to_bound(self) -> bool:
        """Drop the oldest audio until within max_bytes; True if anything was evicted."""
        total = self._total()
        changed = False
        for e in self._entries:  # oldest first
            if total <= self.max_bytes:
                break
            if e.evicted or e.audio_bytes == 0:
                continue
            self._audio_path(e).unlink(missing_ok=True)
            self._timings_path(e).unlink(missing_ok=True)
            total -= e.audio_bytes
            e.audio_bytes, e.evicted, changed = 0, True, True
            log.info("history: evicted the audio of %s (cache bound %d bytes)", e.id, self.max_bytes)
        return changed

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Exclusive across processes (flock on index.lock); closing the descriptor releases it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _reload_on_failure(self) -> Iterator[None]:
        """A change that failed half-way (a full disk) leaves memory ahead of the disk: read the disk next time."""
        try:
            yield
        except BaseException:
            self._seen = None
            raise

    def _signature(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.index_path)
        except FileNotFoundError:
            return 0, 0, 0
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _refresh(self) -> None:
        """Re-read the index if it changed on disk since we last read or wrote it (another process)."""
        if self._seen is not None and self._signature() == self._seen:
            return
        try:
            with self._file_lock():
                self._reload()
        except OSError as exc:
            # Only a view can be stale here (the changes re-read under the lock and report their own errors).
            log.warning("history: could not re-read %s, showing what was read before: %s", self.index_path, exc)

    def _reload(self) -> None:
        """Read the index (under the file lock); set damage aside (see the module docstring)."""
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            self._entries, self._seen = [], (0, 0, 0)
            return
        entries, bad = _parse_index(raw)
        self._entries = entries
        if bad:
            self._set_aside(bad, len(entries))
        self._seen = self._signature()

    def _set_aside(self, bad: int, good: int) -> None:
        lines = "line" if bad == 1 else "lines"
        try:
            aside = set_aside(self.index_path)
        except OSError as exc:
            self.notice = (f"The history index {self.index_path} has {bad} damaged {lines}, left out of this "
                           f"session's history; it could not be moved aside ({exc.strerror or exc}).")
            log.info("history: %s", self.notice)  # info: the caller shows `notice` (one line, not two)
            return
        try:
            self._write_index()
        except OSError as exc:
            self.notice = (f"The history index had {bad} damaged {lines}; it was moved to {aside}, but the "
                           f"{good} usable entries could not be written back ({exc.strerror or exc}).")
        else:
            self.notice = (f"The history index had {bad} damaged {lines}, which were left out; the old file "
                           f"was kept as {aside}.")
        log.info("history: %s", self.notice)  # info: the caller shows `notice` (one line, not two)

    def _append(self, entry: HistoryEntry) -> None:
        """One index line at the end (under the file lock); a failed write is cut off again."""
        line = json.dumps(entry.to_json(), ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
        fd = os.open(self.index_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE)
        try:
            start = os.fstat(fd).st_size
            if start and os.pread(fd, 1, start - 1) != b"\n":
                line = b"\n" + line  # a last line without its newline (written by hand) stays its own line
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)  # half a line would be a damaged line at the next start
                raise
        finally:
            os.close(fd)
        self._seen = self._signature()

    def _write_index(self) -> None:
        lines = [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) for e in self._entries]
        atomic_write(self.index_path, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"), PRIVATE)
        self._seen = self._signature()


def _check_id(entry_id: Any) -> None:
    if not valid_id(entry_id):
        raise HistoryError(f"{_short(entry_id)} is not a history id.")


def _parse_index(raw: bytes) -> tuple[list[HistoryEntry], int]:
    """The usable entries of an index file and how many non-blank lines were not."""
    entries: list[HistoryEntry] = []
    seen: set[str] = set()
    bad = 0
    for n, line in enumerate(raw.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line.decode("utf-8"))
            entry = HistoryEntry.from_json(data)
            if entry.id in seen:
                raise ValueError(f"id {entry.id} appears twice")
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            # One bad line (disk trouble, a hand edit, a planted id) must not cost the whole history.
            log.info("history: leaving out line %d of the index: %s", n, exc)  # the notice counts them
            bad += 1
            continue
        seen.add(entry.id)
        entries.append(entry)
    return entries, bad


def _when(entry: HistoryEntry) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))


def open_store(max_bytes: int) -> tuple[HistoryStore, str | None]:
    """The user's history store, or, when its cache cannot be read, one in a temporary directory for this run
    only, with a sentence saying so (an unreadable cache must not cost the window)."""
    try:
        store = HistoryStore(max_bytes=max_bytes)
        return store, store.notice  # damage found in the index, already set aside
    except OSError as exc:
        problem = f"The history cache cannot be read ({exc}); this session's history is temporary."
        return HistoryStore(Path(tempfile.mkdtemp(prefix="voicegui-history-")), max_bytes=max_bytes), problem


def history_hook(store: HistoryStore, on_recorded: Callable[[Playback], Any] | None = None,
                 on_error: Callable[[str], Any] | None = None) -> HistoryHook:
    """The Player's history hook for `store`: each piece of a finished Playback (a long text's pieces are
    separate files, each with its own header, so a replay decodes each as the file it is) becomes one entry,
    with the Playback's `extra` (and the piece's index when there are several). The file writes run in a
    worker thread; the ids land in `playback.history_ids` (None where the disk refused), then
    `on_recorded(playback)` runs on the loop thread. When the disk refused, `on_error` gets one sentence first
    (once per Playback, on the loop thread): a full disk must not drop history silently."""

    async def record(playback: Playback) -> None:
        options = playback.options
        requests = (options.request, *options.continuation)
        failure: str | None = None
        # A stop can end the fetch before the later pieces: they have no body and no row.
        for piece, (request, original) in enumerate(zip(requests, playback.session.original_pieces, strict=False)):
            entry = HistoryEntry.from_speak(request, playback.metrics, provider=playback.provider,
                                            prebuffer_ms=options.prebuffer_ms, max_buffer_s=options.max_buffer_s)
            entry.extra.update(playback.extra)
            if playback.metrics is not None and playback.metrics.pcm_rate:
                entry.extra["pcm_rate"] = playback.metrics.pcm_rate
            if len(requests) > 1:
                entry.extra["piece"] = piece
            try:
                playback.history_ids.append(await asyncio.to_thread(store.add, entry, original))
            except OSError as exc:
                log.warning("history: could not record a Speak: %s", exc)
                playback.history_ids.append(None)
                failure = failure or f"The history could not be saved: {exc.strerror or exc}."
        if failure is not None and on_error is not None:
            on_error(failure)
        if on_recorded is not None:
            on_recorded(playback)

    return record
