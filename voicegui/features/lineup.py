"""Line-up: the same text spoken by several voices, one after another, measured alike, for comparisons and demos.

A `Lineup` runs one SpeakSession per `LineupEntry` (voice, optionally its own format and provider `Target`)
in the order given, keeping for each what was played (float32 samples) and the response body exactly as the
server sent it, and collects a `LineupResult` (TTFA, duration, underruns, bytes, error, original bytes, played
audio). `on_start(index)` is called before a voice starts and `on_done(index, result)` after it ended (the
window highlights who speaks); `current` is the running SpeakSession, whose snapshot() the window's plots read.
A voice that fails (unknown voice, server down, ...) gets its error in its result and the line-up goes on.
With a HistoryStore, every voice is also recorded there like any Speak. A text over the API's 4096 characters is
cut at sentence ends (text.split_for_request, as a Speak cuts it) and each voice speaks the pieces as one gapless
session (SpeakOptions.continuation); the history gets one row per piece.

Text presets for fair comparisons: `PRESETS` (pangram, numbers/dates/currency, a long paragraph, a question);
the user's edited set lives in `presets_path()` = platformdirs' user_config_dir("voicegui")/presets.json, or
$VOICEGUI_CONFIG_DIR/presets.json, next to settings.json (voicegui.app_dirs.config_dir, as for voicegui.settings).

Threads: `run()` and `stop()` run on the asyncio loop (qasync's in the window, plain asyncio in the CLI); the
callbacks are called on that loop thread, so the window's callbacks may touch widgets only because qasync's
loop thread is the GUI thread. Results are plain data, safe to hand to any thread once `run()` returned.
Preset load/save is blocking local file I/O for any thread. Qt-free.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voicegui.formats import FORMATS
from voicegui.stream.fetch import SpeechRequest
from voicegui.features.history import HistoryEntry, HistoryStore, safe_base_url
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.output import OutputConfig
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.text import split_for_request
from voicegui.files import PRIVATE, atomic_write
from voicegui.app_dirs import config_dir

log = logging.getLogger(__name__)

PRESETS_FILE = "presets.json"

# Texts chosen so that voices are compared on the same hard parts: every letter, numbers read aloud in their
# different guises, breath over a long sentence, and a question's rising intonation.
PRESETS: dict[str, str] = {
    "pangram": "The quick brown fox jumps over the lazy dog.",
    "numbers": ("On 3 March 2025 at 14:30, invoice #4521 came to $1,234.56, which is 12.5% more than "
                "the 1,097.39 euros paid on 01/02/2024; call 555-0142 before 9 a.m."),
    "paragraph": ("Streaming speech is a relay race between the network, the decoder and the sound card. "
                  "The first runner must start quickly, so that the listener hears a voice almost at once; "
                  "the others must never drop the baton, or the voice stutters. A good player keeps a small "
                  "buffer, watches how fast the audio arrives, and waits a little longer only when it must. "
                  "This paragraph is long enough to show whether a voice keeps its pace and its breath."),
    "question": "Did you remember to lock the front door before you left this morning?",
}


# --- presets --------------------------------------------------------------------------------------------

def presets_path() -> Path:
    return config_dir() / PRESETS_FILE


def load_presets(path: Path | None = None) -> dict[str, str]:
    """The user's presets (name -> text), or a copy of PRESETS when there is no file or it is unreadable.

    A file that is not valid JSON is left in place (the user may want to repair it) and the defaults are used;
    entries that are not name -> non-empty text are skipped."""
    path = presets_path() if path is None else path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return dict(PRESETS)
    except (OSError, ValueError) as exc:
        log.warning("presets: cannot read %s (%s); using the built-in presets", path, exc)
        return dict(PRESETS)
    if not isinstance(data, dict):
        log.warning("presets: %s is not a JSON object; using the built-in presets", path)
        return dict(PRESETS)
    presets = {str(k): v for k, v in data.items() if isinstance(v, str) and v.strip()}
    if len(presets) != len(data):
        log.warning("presets: skipped %d entries of %s that are not text", len(data) - len(presets), path)
    return presets


def save_presets(presets: dict[str, str], path: Path | None = None) -> Path:
    """Write the presets as JSON (temporary file + os.replace: never half-written)."""
    path = presets_path() if path is None else path
    body = json.dumps(presets, ensure_ascii=False, indent=2) + "\n"
    atomic_write(path, body.encode("utf-8"), PRIVATE)  # mkstemp's 0600, as before
    return path


# --- line-up --------------------------------------------------------------------------------------------

MAX_INPUT_CHARS = 4096  # a speech API's input limit: longer text goes out as several requests

# Response bodies that still form one valid stream when concatenated (no per-file header or container).
_CONCATENABLE = ("pcm", "mp3", "aac")


def _joined(bodies: list[bytes], fmt: str) -> bytes:
    """The result's `original`: the body, or a long text's bodies joined when the format allows it; else
    b"" (the report then embeds what was played instead of a file with a header in its middle)."""
    if len(bodies) == 1 or fmt in _CONCATENABLE:
        return b"".join(bodies)
    return b""


@dataclass(frozen=True)
class Target:
    """A provider to ask: where, with which key and model. `provider` is a label ("builtin", "openai", ...)."""

    base_url: str
    api_key: str
    model: str
    provider: str = "custom"

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return f"Target(base_url={self.base_url!r}, model={self.model!r}, provider={self.provider!r})"


@dataclass(frozen=True)
class LineupEntry:
    """One voice of a line-up; format/target None: the line-up's defaults."""

    voice: str
    format: str | None = None
    target: Target | None = None
    label: str | None = None  # shown instead of the voice id (e.g. "Kokoro bella")


def parse_entries(spec: str, default_format: str | None = None) -> list[LineupEntry]:
    """"heart,espeak:en-us/mp3" -> entries. A "/fmt" suffix sets that voice's format when fmt is a known one
    (voice ids may contain ':' and '+', so neither can be the separator)."""
    entries: list[LineupEntry] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        voice, fmt = part, default_format
        head, sep, tail = part.rpartition("/")
        if sep and tail.lower() in FORMATS and head:
            voice, fmt = head, tail.lower()
        entries.append(LineupEntry(voice=voice, format=fmt))
    return entries


@dataclass
class LineupResult:
    """What one voice of a line-up did. `played` is float32 mono at `sample_rate`."""

    index: int
    label: str
    voice: str
    format: str
    model: str
    provider: str
    base_url: str  # without credentials
    metrics: SessionMetrics | None
    error: str | None
    original: bytes = b""
    played: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    sample_rate: int = 24000
    history_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def ttfa_ms(self) -> float | None:
        return None if self.metrics is None else self.metrics.ttfa_ms

    @property
    def duration_s(self) -> float:
        return 0.0 if self.metrics is None else self.metrics.audio_played_s

    @property
    def underruns(self) -> int:
        return 0 if self.metrics is None else self.metrics.underrun_episodes

    @property
    def bytes(self) -> int:
        return 0 if self.metrics is None else self.metrics.bytes_received

    @property
    def detected_format(self) -> str | None:
        return None if self.metrics is None else self.metrics.detected_format


def _options_support_original() -> bool:
    return any(f.name == "keep_original" for f in dataclasses.fields(SpeakOptions))


class _CapturingSession(SpeakSession):
    """Keeps the response body as received. Stop-gap until SpeakOptions.keep_original exists (then unused)."""

    def __init__(self, options: SpeakOptions) -> None:
        super().__init__(options)
        self._original_parts: list[bytes] = []

    async def _on_chunk(self, data: bytes) -> None:
        self._original_parts.append(bytes(data))
        await super()._on_chunk(data)

    @property
    def original_bytes(self) -> bytes:
        return b"".join(self._original_parts)


class Lineup:
    """Speak `text` with each entry in turn. Construct on any thread; `run()`/`stop()` on the loop thread."""

    def __init__(self, text: str, entries: Sequence[LineupEntry], target: Target, *,
                 response_format: str = "pcm", speed: float | None = None, instructions: str | None = None,
                 chunk_bytes: int | None = None, timeout_s: float = 30.0, prebuffer_ms: float | None = None,
                 max_buffer_s: float = 10.0, output: OutputConfig | None = None,
                 on_start: Callable[[int], Any] | None = None,
                 on_done: Callable[[int, LineupResult], Any] | None = None,
                 history: HistoryStore | None = None) -> None:
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        if not entries:
            raise ValueError("a line-up needs at least one voice")
        for e in entries:
            fmt = e.format or response_format
            if fmt not in FORMATS:
                raise ValueError(f"unknown audio format {fmt!r} for voice {e.voice!r}; "
                                 f"expected one of {', '.join(FORMATS)}")
        self.text = text
        self.entries = list(entries)
        self.target = target
        self.response_format = response_format
        self.speed, self.instructions = speed, instructions
        self.chunk_bytes, self.timeout_s = chunk_bytes, timeout_s
        self.prebuffer_ms, self.max_buffer_s = prebuffer_ms, max_buffer_s
        self.output = output or OutputConfig()
        self.on_start, self.on_done = on_start, on_done
        self.history = history
        self.results: list[LineupResult] = []
        self.current: SpeakSession | None = None  # the session speaking now (the window plots its snapshot)
        self.current_index: int | None = None
        self._stopped = False

    def stop(self) -> None:
        """Silence the current voice now and skip the rest (loop thread)."""
        self._stopped = True
        if self.current is not None:
            self.current.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def run(self) -> list[LineupResult]:
        """Speak every entry in order (until stop()); returns one result per voice that was started."""
        self.results = []
        for index, entry in enumerate(self.entries):
            if self._stopped:
                break
            self.current_index = index
            if self.on_start is not None:
                self.on_start(index)
            result = await self._speak(index, entry)
            self.results.append(result)
            if self.on_done is not None:
                self.on_done(index, result)
        self.current, self.current_index = None, None
        return self.results

    def _requests(self, entry: LineupEntry) -> tuple[list[SpeechRequest], Target]:
        """One request per piece of the text: a text over the API's 4096 characters is cut at sentence ends
        (text.split_for_request), exactly as a Speak cuts it, so every voice gets the same pieces."""
        target = entry.target or self.target
        pieces = [self.text] if len(self.text) <= MAX_INPUT_CHARS else split_for_request(self.text, MAX_INPUT_CHARS)
        return [SpeechRequest(
            base_url=target.base_url, api_key=target.api_key, model=target.model, voice=entry.voice,
            text=piece, response_format=entry.format or self.response_format, speed=self.speed,
            instructions=self.instructions, chunk_bytes=self.chunk_bytes, timeout_s=self.timeout_s,
        ) for piece in pieces], target

    async def _speak(self, index: int, entry: LineupEntry) -> LineupResult:
        requests, target = self._requests(entry)
        request = requests[0]
        kwargs: dict[str, Any] = {}
        native = _options_support_original()
        if native:
            kwargs["keep_original"] = True
        # The pieces of a long text are fetched one after another into one session (one ring, one device
        # stream): the voice plays them as one gapless utterance and gets one TTFA, like a Speak.
        options = SpeakOptions(request=request, continuation=tuple(requests[1:]), prebuffer_ms=self.prebuffer_ms,
                               max_buffer_s=self.max_buffer_s, output=self.output, keep_played=True, **kwargs)
        session: SpeakSession = SpeakSession(options) if native else _CapturingSession(options)
        self.current = session
        metrics = await session.run()
        # One body per request (each a whole file); the stop-gap capturing session only knows the joined bytes.
        bodies: list[bytes] = (session.original_pieces if native
                               else [session.original_bytes])
        result = LineupResult(
            index=index, label=entry.label or entry.voice, voice=entry.voice, format=request.response_format,
            model=request.model, provider=target.provider, base_url=safe_base_url(request.base_url),
            metrics=metrics, error=metrics.error, original=_joined(bodies, request.response_format),
            played=session.played_audio, sample_rate=session.sample_rate or 24000,
        )
        if self.history is not None:
            # One history row per piece (each body is a whole file with its own header), as a Speak records.
            for piece, (req, body) in enumerate(zip(requests, bodies)):
                hist = HistoryEntry.from_speak(req, metrics, provider=target.provider,
                                               prebuffer_ms=self.prebuffer_ms, max_buffer_s=self.max_buffer_s)
                hist.extra["lineup_index"] = index
                if len(requests) > 1:
                    hist.extra["lineup_piece"] = piece
                # File I/O off the loop: a multi-MB body must not stall the next voice's start or the GUI.
                history_id = await asyncio.to_thread(self.history.add, hist, body)
                if piece == 0:
                    result.history_id = history_id
        log.info("line-up %d/%d %s: %s", index + 1, len(self.entries), result.label,
                 "ok" if result.ok else result.error)
        return result
