"""Line-up: the same text spoken by several voices, one after another, measured alike, for comparisons and demos.

A `Lineup` plays one Playback per `LineupEntry` (voice, optionally its own format and provider `Target`)
through a `Player` (the window's own, so nothing else plays meanwhile; or one of its own) in the order given,
keeping for each what was played (float32 samples) and the response body exactly as the server sent it, and
collects a `LineupResult` (TTFA, duration, underruns, bytes, error, original bytes, played audio).
`on_start(index)` is called before a voice starts and `on_done(index, result)` after it ended (the window
highlights who speaks); `current` is the running SpeakSession, whose snapshot() the window's plots read.
A voice that fails (unknown voice, server down, ...) gets its error in its result and the line-up goes on.
Every voice is recorded like any Speak by the player's history hook (a Lineup given a HistoryStore builds a
Player with that hook); something else started or stopped on the same player ends the line-up. A text over the
API's 4096 characters is cut at sentence ends (text.split_for_request, as a Speak cuts it) and each voice speaks
the pieces as one gapless session (SpeakOptions.continuation); the history gets one row per piece.

Warm-up (`warmup=True`, the default): right before a voice is measured, one short untimed request
(`WARMUP_TEXT`, same voice, model and format) is fetched to its end and thrown away, so the measured TTFA is
the engine's warm one: the first voice of a built-in line-up otherwise includes loading its model (heart:
1.7 s against 0.1 s warm). The warm-up's own time to first byte is kept as `cold_ttfa_ms` ("cold": it
includes loading, and no decoding or device); `ttfa_ms` is the warm, measured one. A warm-up that fails is
logged and the measured request then reports the error itself.

Loudness matching (`match_loudness=True`, off by default): the warm-up (made even with warmup=False) is
then a sentence long enough to measure (`LOUDNESS_WARMUP_TEXT`); its EBU R128 loudness (features/
loudness.py) sets the voice's playback volume so it plays at `loudness.TARGET_LUFS` (-23 LUFS). Live
audio's peaks are not known before it plays, so the line-up only ever turns a voice *down* (gain <= 0 dB:
it cannot clip); a voice quieter than the target plays as sent. The result keeps the gain (`gain_db`); its
`played` audio is what was heard (gained).

Timings (`timings=True`, the default): once every voice has spoken, each built-in voice that played to its end
is asked for its read-along timings the way the window asks them for a Speak (features/captioned.py: the
built-in server's /dev/captioned_speech; espeak-ng's word events, hibari's sentence bounds): `LineupResult.timings`
(None for other servers and when they cannot be had, logged; the report then estimates them from what was
played, and says so). Asked after the last voice, not between voices, so no second synthesis competes with a
measured one and the voices follow each other as before; Stop cancels them. Timings whose audio is not as long
as what was played (another synthesis than the one heard) are dropped.

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voicegui.app_dirs import config_dir
from voicegui.decode.errors import DecodeError
from voicegui.features.captioned import CaptionedError, fetch_timings
from voicegui.features.history import HistoryStore, history_hook, safe_base_url
from voicegui.features.loudness import decode_whole, matching_gain_db, measure
from voicegui.features.timings import Timings
from voicegui.files import PRIVATE, atomic_write
from voicegui.formats import FORMATS
from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, fetch_speech
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.output import OutputConfig
from voicegui.stream.player import Player
from voicegui.stream.session import SpeakOptions, SpeakSession
from voicegui.text import split_for_request

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

MAX_WARMUP_BYTES = 8 * 1024 * 1024  # a warm-up body kept for its loudness (seconds of audio: far less)
MAX_INPUT_CHARS = 4096  # a speech API's input limit: longer text goes out as several requests
WARMUP_TEXT = "Hello."  # short: it only has to make the engine load its voice, not be heard
# Long enough for a loudness measure (BS.1770 gates 400 ms blocks), short enough to stay a warm-up.
LOUDNESS_WARMUP_TEXT = "Hello there, this short sentence sets the loudness of this voice."

# Voices whose timings are asked for: the built-in server's (providers.BUILTIN; features does not import providers).
TIMED_PROVIDERS = ("builtin",)
# How far timings' audio may differ from what was played and still be of that audio (as ui/progress.py allows).
TIMINGS_MATCH_S, TIMINGS_MATCH_SHARE = 0.05, 0.02

# Response bodies that still form one valid stream when concatenated (no per-file header or container).
_CONCATENABLE = ("pcm", "mp3", "aac")


def _joined(bodies: list[bytes], fmt: str) -> bytes:
    """The result's `original`: the body, or a long text's bodies joined when the format allows it; else
    b"" (the report then embeds what was played instead of a file with a header in its middle)."""
    if len(bodies) == 1 or fmt in _CONCATENABLE:
        return b"".join(bodies)
    return b""


class _WarmupStopped(Exception):
    """Raised from the warm-up's chunk callback when the line-up was stopped meanwhile."""


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
    # Time to the first byte of the untimed warm-up request (engine loading included); None: no warm-up.
    cold_ttfa_ms: float | None = None
    gain_db: float = 0.0  # the loudness-matching gain it was played with (0: none)
    # Read-along timings of what it said, from its server (see the module docstring); None: not had.
    timings: Timings | None = None

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


class Lineup:
    """Speak `text` with each entry in turn. Construct on any thread; `run()`/`stop()` on the loop thread."""

    def __init__(self, text: str, entries: Sequence[LineupEntry], target: Target, *,
                 response_format: str = "pcm", speed: float | None = None, instructions: str | None = None,
                 chunk_bytes: int | None = None, timeout_s: float = 30.0, prebuffer_ms: float | None = None,
                 max_buffer_s: float = 10.0, output: OutputConfig | None = None,
                 on_start: Callable[[int], Any] | None = None,
                 on_done: Callable[[int, LineupResult], Any] | None = None,
                 history: HistoryStore | None = None, player: Player | None = None,
                 pcm_rate: int | None = None, warmup: bool = True, match_loudness: bool = False,
                 extra_body: dict[str, Any] | None = None, stream_field_auto: bool = False,
                 stream_format: str = "audio", timings: bool = True) -> None:
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        if not entries:
            raise ValueError("a line-up needs at least one voice")
        if history is not None and player is not None:
            raise ValueError("give the line-up a history or a player (with its own history hook), not both")
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
        # The provider's request extras (the stream flag, lang_code, the extra JSON body) and audio transport,
        # sent with every voice as a Speak sends them.
        self.extra_body = dict(extra_body or {})
        self.stream_field_auto, self.stream_format = stream_field_auto, stream_format
        self.prebuffer_ms, self.max_buffer_s = prebuffer_ms, max_buffer_s
        self.output = output or OutputConfig()
        self.pcm_rate = pcm_rate
        self.warmup = warmup
        self.match_loudness = match_loudness
        self.timings = timings
        self.on_start, self.on_done = on_start, on_done
        # The window hands in its own Player, so the line-up and everything else never play at once.
        self.player = player or Player(history_hook=None if history is None else history_hook(history))
        self.results: list[LineupResult] = []
        self.current: SpeakSession | None = None  # the session speaking now (the window plots its snapshot)
        self.current_index: int | None = None
        self._stopped = False
        self._generation: int | None = None  # the player's generation after our last start
        self._warming: asyncio.Task | None = None  # the warm-up fetch running now (Stop cancels it)
        self._timing: asyncio.Task | None = None  # the timings being asked for now (Stop cancels them)

    def stop(self) -> None:
        """Silence the current voice now and skip the rest (loop thread)."""
        self._stopped = True
        if self._warming is not None:
            self._warming.cancel()  # a cold engine may take seconds to answer: Stop must not wait for it
        if self._timing is not None:
            self._timing.cancel()
        if self.current is not None:
            self.current.stop()

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def run(self) -> list[LineupResult]:
        """Speak every entry in order (until stop(), or until something else played on the same Player);
        returns one result per voice that was started."""
        self.results = []
        # From here on, anything else started or stopped on the player ends the line-up, even while the first
        # voice is still warming up.
        self._generation = self.player.generation
        for index, entry in enumerate(self.entries):
            if self._generation is not None and self.player.generation != self._generation:
                self._stopped = True  # between two voices, something else was started or stopped
            if self._stopped:
                break
            self.current_index = index
            if self.on_start is not None:
                self.on_start(index)
            result = await self._speak(index, entry)
            if result is None:
                self._stopped = True  # stopped before this voice's session began
                break
            self.results.append(result)
            if self.on_done is not None:
                self.on_done(index, result)
        self.current, self.current_index = None, None
        if self.timings:
            for result in self.results:
                if self._stopped:
                    break
                await self._add_timings(result)
        return self.results

    async def _add_timings(self, result: LineupResult) -> None:
        """Ask the voice's server for the timings of what it said (built-in voices that played to the end)."""
        entry = self.entries[result.index]
        requests, target = self._requests(entry)
        if target.provider not in TIMED_PROVIDERS or not result.ok or result.metrics is None \
                or not result.metrics.completed:
            return
        self._timing = asyncio.ensure_future(self._fetch_timings(requests))
        try:
            timings = await self._timing
        except CaptionedError as exc:
            log.info("line-up: no timings for %s (%s); the report estimates them", result.label, exc)
            return
        except asyncio.CancelledError:
            if not self._stopped:
                raise
            return
        finally:
            self._timing = None
        slack = TIMINGS_MATCH_S + TIMINGS_MATCH_SHARE * result.duration_s
        if timings.audio_s is not None and abs(timings.audio_s - result.duration_s) > slack:
            log.info("line-up: %s's timings are of %.2f s of audio, %.2f s were played; not used", result.label,
                     timings.audio_s, result.duration_s)
            return
        result.timings = timings

    async def _fetch_timings(self, requests: Sequence[SpeechRequest]) -> Timings:
        """The pieces' timings, one after the other on one clock, over the pieces' text joined by spaces."""
        text = " ".join(r.text for r in requests)
        parts: list[Timings] = []
        offset_s, offset_chars = 0.0, 0
        for r in requests:
            piece = await fetch_timings(r.base_url, r.api_key, r.model, r.voice, r.text,
                                        1.0 if r.speed is None else r.speed, timeout_s=max(r.timeout_s, 60.0))
            if piece.audio_s is None:
                raise CaptionedError("The server's timings do not say how long their audio is.")
            parts.append(piece.shifted(offset_s, offset_chars, text))
            offset_s += piece.audio_s
            offset_chars += len(r.text) + 1
        if len(parts) == 1:
            return parts[0]
        return Timings(text, tuple(w for p in parts for w in p.words), tuple(s for p in parts for s in p.sentences),
                       audio_s=offset_s)

    def _requests(self, entry: LineupEntry) -> tuple[list[SpeechRequest], Target]:
        """One request per piece of the text: a text over the API's 4096 characters is cut at sentence ends
        (text.split_for_request), exactly as a Speak cuts it, so every voice gets the same pieces."""
        target = entry.target or self.target
        pieces = [self.text] if len(self.text) <= MAX_INPUT_CHARS else split_for_request(self.text, MAX_INPUT_CHARS)
        return [SpeechRequest(
            base_url=target.base_url, api_key=target.api_key, model=target.model, voice=entry.voice,
            text=piece, response_format=entry.format or self.response_format, speed=self.speed,
            instructions=self.instructions, chunk_bytes=self.chunk_bytes, timeout_s=self.timeout_s,
            extra_body=dict(self.extra_body), stream_field_auto=self.stream_field_auto,
            stream_format=self.stream_format,
        ) for piece in pieces], target

    async def _warm(self, request: SpeechRequest) -> tuple[float | None, float]:
        """Fetch a short untimed request for this voice to its end (nothing is played): the time to its first
        byte in ms (None when it failed: the measured request will report why) and the loudness-matching
        gain in dB (0 unless match_loudness)."""
        warm = dataclasses.replace(request, text=LOUDNESS_WARMUP_TEXT if self.match_loudness else WARMUP_TEXT)
        marks = FetchMarks()
        body = bytearray()

        async def discard(chunk: bytes) -> None:
            if self._stopped:
                raise _WarmupStopped  # Stop during the warm-up: end it at once
            if self.match_loudness and len(body) < MAX_WARMUP_BYTES:
                body.extend(chunk)

        started = time.monotonic()
        self._warming = asyncio.ensure_future(fetch_speech(warm, marks, discard))
        try:
            await self._warming
        except FetchError as exc:
            # The measured request that follows reports the failure to the user; this is for the log.
            log.info("line-up warm-up of %s failed: %s", request.voice, exc)
            return None, 0.0
        except _WarmupStopped:
            return None, 0.0
        except asyncio.CancelledError:
            if not self._stopped:
                raise  # the line-up itself was cancelled, not stopped
            return None, 0.0
        finally:
            self._warming = None
        cold = None if marks.first_byte is None else (marks.first_byte - started) * 1000.0
        return cold, self._matching_gain(request, bytes(body), marks.response_headers)

    def _matching_gain(self, request: SpeechRequest, body: bytes, headers: dict[str, str]) -> float:
        """Attenuation (<= 0 dB) that brings the warm-up's loudness to TARGET_LUFS; 0 when it cannot be
        measured (logged: the voice then plays as sent)."""
        if not self.match_loudness:
            return 0.0
        try:
            loudness = measure(decode_whole(body, request.response_format, headers), 24000)
        except DecodeError as exc:
            log.warning("line-up: cannot measure the loudness of %s (%s); it plays as sent", request.voice, exc)
            return 0.0
        if loudness.lufs is None:
            log.warning("line-up: %s's warm-up is too short or silent to measure; it plays as sent", request.voice)
            return 0.0
        return min(0.0, matching_gain_db(loudness))

    async def _speak(self, index: int, entry: LineupEntry) -> LineupResult | None:
        """One voice through the player; None when it was stopped or overtaken before it ended."""
        requests, target = self._requests(entry)
        request = requests[0]
        # Loudness matching measures the warm-up, so it implies one.
        cold_ms, gain_db = await self._warm(request) if (self.warmup or self.match_loudness) else (None, 0.0)
        output = self.output if gain_db == 0.0 else dataclasses.replace(
            self.output, volume=self.output.volume * 10.0 ** (gain_db / 20.0))
        if self.player.generation != self._generation:
            self._stopped = True  # something else was started or stopped on the player during the warm-up
        if self._stopped:
            return None
        # The pieces of a long text are fetched one after another into one session (one ring, one device
        # stream): the voice plays them as one gapless utterance and gets one TTFA, like a Speak.
        options = SpeakOptions(request=request, continuation=tuple(requests[1:]), prebuffer_ms=self.prebuffer_ms,
                               max_buffer_s=self.max_buffer_s, output=output, keep_played=True,
                               keep_original=True, pcm_rate=self.pcm_rate)
        playback = await self.player.start(options, kind="lineup", title=entry.label or entry.voice,
                                           provider=target.provider, extra={"lineup_index": index})
        if playback is None:
            return None
        self._generation = self.player.generation
        self.current = playback.session
        await playback.done.wait()
        if playback.superseded:
            self._stopped = True  # something else plays now (or the player was stopped): the rest is skipped
        metrics = playback.metrics
        if metrics is None:
            return None
        session = playback.session
        result = LineupResult(
            index=index, label=entry.label or entry.voice, voice=entry.voice, format=request.response_format,
            model=request.model, provider=target.provider, base_url=safe_base_url(request.base_url),
            metrics=metrics, error=metrics.error, original=_joined(session.original_pieces, request.response_format),
            played=session.played_audio, sample_rate=session.sample_rate or 24000, cold_ttfa_ms=cold_ms,
            gain_db=gain_db,
        )
        # The history rows (one per piece) are written before the next voice starts, so the result names them.
        await playback.recorded.wait()
        if playback.history_ids:
            result.history_id = playback.history_ids[0]
        log.info("line-up %d/%d %s: %s", index + 1, len(self.entries), result.label,
                 "ok" if result.ok else result.error)
        return result
