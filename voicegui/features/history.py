"""History of Speaks: a JSON-lines index of what was said and measured, plus a bounded cache of the audio.

Every Speak becomes one `HistoryEntry` (time, provider, base URL, model, voice, format, buffer settings,
TTFA, underruns, duration, bytes, error) in `<root>/index.jsonl`, and the response body exactly as the server
sent it (in its own format: pcm, wav, mp3, ...) in `<root>/audio/<id>.<ext>`. The root is platformdirs'
user_cache_dir("voicegui")/history, or $VOICEGUI_CACHE_DIR/history when set (tests, portable installs).

Bound: the cached audio may use at most `max_bytes` (default 200 MB). Adding audio beyond that evicts the
oldest entries' audio; their index lines stay, marked `evicted`, so the measurements outlive the sound. The
index itself is not counted (a few hundred bytes per Speak).

Atomicity: the audio file and the index are each written to a temporary file in the same directory and
`os.replace`d, so a crash leaves either the old or the new version, never half a file. The audio is written
before the index names it; an audio file the index does not name (a crash between the two) is harmless: it is
not counted, and `delete_orphans()` removes it.

Secrets: an entry has no API key field, and the base URL is stored without user:password@ and without its
query string (some gateways put keys there). Only what `HistoryEntry` names is ever written.

Threads: blocking file I/O, meant for the GUI thread or a worker (the files are local and small-ish; the
window may prefer `asyncio.to_thread(store.add, ...)` for multi-MB bodies). One `threading.Lock` per store
serialises calls, so the asyncio loop and the GUI thread may share a store. Two processes writing the same
store at once may lose an index update (last writer wins); they never corrupt it. Qt-free.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicegui.app_dirs import cache_dir
from voicegui.crash import redact
from voicegui.files import PRIVATE, atomic_write
from voicegui.formats import EXTENSIONS
from voicegui.wavfile import wav_bytes

if TYPE_CHECKING:
    from voicegui.stream.player import HistoryHook, Playback

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
INDEX_FILE = "index.jsonl"
AUDIO_DIR = "audio"



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
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        # Unknown keys (a newer version wrote them) are dropped rather than refused.
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_speak(cls, request: Any, metrics: Any, provider: str = "", prebuffer_ms: float | None = None,
                   max_buffer_s: float | None = None, when: float | None = None) -> HistoryEntry:
        """An entry for one finished Speak: `request` a SpeechRequest, `metrics` its SessionMetrics (or None).

        The request's api_key is deliberately not read."""
        m = metrics
        return cls(
            time=time.time() if when is None else when,
            provider=provider,
            base_url=safe_base_url(request.base_url),
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


def decode_all(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Decode a whole response body with the streaming decoder: (float32 mono samples, sample rate).

    Raises voicegui.decode.stream_decoder.DecodeError if the bytes hold no audio."""
    from voicegui.decode.stream_decoder import PCM_RATE, create_decoder

    dec = create_decoder(fmt)
    parts = [dec.feed(data), dec.flush()]
    samples = np.concatenate([p for p in parts if len(p)] or [np.zeros(0, dtype=np.float32)])
    return samples.astype(np.float32, copy=False), dec.sample_rate or PCM_RATE


class HistoryStore:
    """The index and audio cache under `root` (default: `default_root()`); see the module docstring."""

    def __init__(self, root: Path | str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.root = Path(root) if root is not None else default_root()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: list[HistoryEntry] = self._load()

    # --- public ---------------------------------------------------------------------------------------
    def add(self, entry: HistoryEntry, original: bytes = b"") -> str:
        """Record `entry` and cache `original` (the body exactly as received); evict to the bound; its id."""
        with self._lock:
            entry = dataclasses.replace(entry, extra=dict(entry.extra))
            entry.id = self._new_id()
            entry.base_url = safe_base_url(entry.base_url)  # also when the caller built the entry by hand
            entry.audio_bytes = 0
            entry.evicted = False
            if original:
                atomic_write(self._audio_path(entry), bytes(original), PRIVATE)
                entry.audio_bytes = len(original)
            self._entries.append(entry)
            self._evict_to_bound()
            self._save_index()
            return entry.id

    def entries(self) -> list[HistoryEntry]:
        """Copies of every entry, oldest first."""
        with self._lock:
            return [dataclasses.replace(e, extra=dict(e.extra)) for e in self._entries]

    def get(self, entry_id: str) -> HistoryEntry:
        with self._lock:
            found = self._find(entry_id)
            return dataclasses.replace(found, extra=dict(found.extra))

    def original(self, entry_id: str) -> bytes:
        """The cached response body, byte for byte. HistoryError if evicted or never cached."""
        with self._lock:
            entry = self._find(entry_id)
            path = self._audio_path(entry)
            if entry.evicted or entry.audio_bytes == 0:
                why = "was evicted to keep the cache within its size limit" if entry.evicted else "was not kept"
                raise HistoryError(f"The audio of {entry.voice} at {_when(entry)} {why}.")
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
        samples, rate = decode_all(self.original(entry_id), entry.detected_format or entry.format)
        target = Path(path)
        atomic_write(target, wav_bytes(samples, rate))
        return target

    def delete(self, entry_id: str) -> None:
        """Remove the entry and its audio."""
        with self._lock:
            entry = self._find(entry_id)
            self._entries.remove(entry)
            self._audio_path(entry).unlink(missing_ok=True)
            self._save_index()

    def clear(self) -> None:
        with self._lock:
            for entry in self._entries:
                self._audio_path(entry).unlink(missing_ok=True)
            self._entries.clear()
            self._save_index()

    def total_bytes(self) -> int:
        """Bytes of cached audio (what the bound limits)."""
        with self._lock:
            return self._total()

    def set_max_bytes(self, max_bytes: int) -> None:
        """Change the bound (a setting); evicts at once if the cache is now over it."""
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        with self._lock:
            self.max_bytes = max_bytes
            if self._evict_to_bound():
                self._save_index()

    def delete_orphans(self) -> int:
        """Remove audio files no entry names (left by a crash between the audio and the index write)."""
        with self._lock:
            named = {self._audio_path(e).name for e in self._entries}
            removed = 0
            audio = self.root / AUDIO_DIR
            if audio.is_dir():
                for p in audio.iterdir():
                    if p.name not in named:
                        p.unlink(missing_ok=True)
                        removed += 1
            return removed

    # --- internals ------------------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    def _audio_path(self, entry: HistoryEntry) -> Path:
        return self.root / AUDIO_DIR / f"{entry.id}.{EXTENSIONS.get(entry.format, 'bin')}"

    def _find(self, entry_id: str) -> HistoryEntry:
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
            total -= e.audio_bytes
            e.audio_bytes, e.evicted, changed = 0, True, True
            log.info("history: evicted the audio of %s (cache bound %d bytes)", e.id, self.max_bytes)
        return changed

    def _load(self) -> list[HistoryEntry]:
        try:
            text = self.index_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries: list[HistoryEntry] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                entries.append(HistoryEntry.from_json(data))
            except (ValueError, TypeError) as exc:
                # One bad line (a newer/older writer, disk trouble) must not cost the whole history.
                log.warning("history: skipping line %d of %s: %s", n, self.index_path, exc)
        return entries

    def _save_index(self) -> None:
        lines = [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) for e in self._entries]
        atomic_write(self.index_path, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"), PRIVATE)


def _when(entry: HistoryEntry) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))


def open_store(max_bytes: int) -> tuple[HistoryStore, str | None]:
    """The user's history store, or, when its cache cannot be read, one in a temporary directory for this run
    only, with a sentence saying so (an unreadable cache must not cost the window)."""
    try:
        return HistoryStore(max_bytes=max_bytes), None
    except OSError as exc:
        problem = f"The history cache cannot be read ({exc}); this session's history is temporary."
        return HistoryStore(Path(tempfile.mkdtemp(prefix="voicegui-history-")), max_bytes=max_bytes), problem


def history_hook(store: HistoryStore, on_recorded: Callable[[Playback], Any] | None = None) -> HistoryHook:
    """The Player's history hook for `store`: each piece of a finished Playback (a long text's pieces are
    separate files, each with its own header, so a replay decodes each as the file it is) becomes one entry,
    with the Playback's `extra` (and the piece's index when there are several). The file writes run in a
    worker thread; the ids land in `playback.history_ids` (None where the disk refused), then
    `on_recorded(playback)` runs on the loop thread."""

    async def record(playback: Playback) -> None:
        options = playback.options
        requests = (options.request, *options.continuation)
        # A stop can end the fetch before the later pieces: they have no body and no row.
        for piece, (request, original) in enumerate(zip(requests, playback.session.original_pieces, strict=False)):
            entry = HistoryEntry.from_speak(request, playback.metrics, provider=playback.provider,
                                            prebuffer_ms=options.prebuffer_ms, max_buffer_s=options.max_buffer_s)
            entry.extra.update(playback.extra)
            if len(requests) > 1:
                entry.extra["piece"] = piece
            try:
                playback.history_ids.append(await asyncio.to_thread(store.add, entry, original))
            except OSError as exc:
                log.warning("history: could not record a Speak: %s", exc)
                playback.history_ids.append(None)
        if on_recorded is not None:
            on_recorded(playback)

    return record
