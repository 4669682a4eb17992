"""SpeakSession: one Speak = fetch -> decode -> ring -> output, with a snapshot for the UI and the CLI.

Threads:
* The asyncio loop runs ``run()``: the fetch (network), the decoder, writes into the playback ring, the
  prebuffer policy, and a monitor task that drains the "played" ring, records buffer-level history and
  notices underruns (each level point also records the prebuffer gate in force and whether the output
  played, for the buffer plot). ``stop()`` must be called on the loop thread (the window does, from its slot).
* The PortAudio callback thread only touches the AudioOutput (see output.py). The device stream it plays on is
  the output keeper's (the Player's, kept open between sessions) or, without one, the session's own, closed at
  its end; either way the session releases it only once its last sample has been played (or on Stop).
* Device loss: the monitor polls ``AudioOutput.check_alive()``; when the device went away (or hung) it records
  the failure and cancels ``run()``'s task, which ends the fetch (closing the connection) and reports a
  'device' error, so a Speak never waits for a ``finished`` that will not come.
* Memory: the body kept with ``keep_original`` is bounded by ``max_original_bytes`` (limits.MAX_ORIGINAL_BYTES,
  64 MiB); past it the session drops what it kept and sets ``original_truncated`` (an endless stream must not
  grow the window), so nothing partial is cached or stored; playback goes on. The decoder bounds what it reads
  without audio (decode/stream_decoder.py), the Realtime reader the transcript (stream/realtime.py).
* ``snapshot()`` may be called from any thread: everything it reads is either an atomic attribute or guarded
  by ``_lock``, which the loop holds only to append a few values. Its arrays (level history, waveform) are
  read-only views of append-only tables (level_history.RecentRows) that no later append changes, so a
  snapshot copies nothing and is read without the lock.
* Long text: the loop appends where each piece's audio starts (``_piece_starts``, in decoded frames, known
  exactly once the previous piece's decoder is flushed) and sets ``_fetch_done`` after the last piece;
  ``snapshot()`` turns them and the device's played-frame counter into which piece is fetched and which is
  heard, and the played-audio clock (``played_s``) the progress line and the text highlight follow.
* Imports: the decoders are imported by the first session, not with this module (the window imports this module
  before it is first shown); PyAV's FFmpeg (~60-80 ms, ~14 MB) only for a compressed format, on a worker thread
  while the request is out (decode.stream_decoder.backend_to_import), so the first chunk finds it loaded. A window
  that plays only pcm and wav never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import threading
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from voicegui.decode.errors import DecodeError
from voicegui.formats import PCM_RATE, announced_pcm_format
from voicegui.limits import MAX_ORIGINAL_BYTES
from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, TimedOnChunk, fetch_speech
from voicegui.stream.level_history import RecentRows
from voicegui.stream.metrics import SessionMetrics, TtfaMarks
from voicegui.stream.output import AudioOutput, OutputConfig, OutputError, OutputKeeper, device_sample_rate
from voicegui.stream.prebuffer import PrebufferPolicy
from voicegui.stream.realtime import TranscriptTimeline, fetch_realtime, uses_realtime
from voicegui.stream.ring import FloatRing

if TYPE_CHECKING:
    from voicegui.decode.stream_decoder import StreamDecoder

log = logging.getLogger(__name__)

OPENAI_SAMPLE_RATE = 24000
# The monitor looks every 10 ms while the output waits for its gate (the auto hold falls as time passes) or has
# little left to play, and every 30 ms while it plays from more than two of those: it cannot run dry before the
# next look, and each wake of the loop costs CPU (a 30 s Speak: ~1 point of a core less, `voicegui speak`).
_MONITOR_PERIOD_S = 0.01
_MONITOR_PLAYING_S = 0.03
# A full ring is tried again after 50 ms (a quarter of the ring if that is less, 5 ms at least): it holds far
# more than that, and the next read then takes what came meanwhile in one go. Every 5 ms kept a long Speak's loop
# awake 200 times a second while its 10 s of audio played (`voicegui speak`, 30 s: ~1 point of a core).
_BACKPRESSURE_POLL_S = 0.005
_BACKPRESSURE_WAIT_S = 0.05
_PLAYED_RING_S = 10.0
_WAVEFORM_S = 3.0  # the window shows the last 2 s
_HISTORY_POINTS = 20000
# Shared by every scalar-only snapshot, so read-only.
_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False
_EMPTY_WAVE = np.zeros(0, np.float32)
_EMPTY_WAVE.flags.writeable = False


def _import_ahead(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:  # the decoder imports it again when the body needs it, and reports it then
        log.debug("importing %s ahead failed: %s", module, exc)


def _new_decoder(response_format: str, output_rate: int) -> StreamDecoder:
    from voicegui.decode.stream_decoder import create_decoder  # see "Imports" in the module docstring

    return create_decoder(response_format, output_rate=output_rate)


@dataclass(frozen=True)
class SpeakOptions:
    request: SpeechRequest
    prebuffer_ms: float | None = None  # None: auto
    max_buffer_s: float = 10.0
    output: OutputConfig = field(default_factory=OutputConfig)
    keep_played: bool = False  # keep every played sample (for --out / saving)
    # Keep the response body exactly as received (history cache, line-up reports): session.original_bytes.
    keep_original: bool = False
    # Used instead of fetch_speech, same signature (req, marks, on_chunk) -> int: a replay from the history
    # cache (stream/replay_source.py) then runs the same decode/ring/output/plots path with no request.
    source: Callable[[SpeechRequest, FetchMarks, TimedOnChunk], Awaitable[int]] | None = None
    # Further pieces of one long text (each within the API's 4096 characters, see text.split_for_request),
    # fetched one after another into the same ring and device so they play as one gapless utterance.
    continuation: tuple[SpeechRequest, ...] = ()
    # What a raw pcm body is, when the user says so (a server that sends another rate without saying it);
    # None: what the response's headers announce, else PCM_RATE mono.
    pcm_rate: int | None = None
    # When the Speak began, on time.monotonic(), if that was before the session was made (the CLI sends its
    # request before the audio stack is imported: stream/early_fetch.py); None: when the session is made.
    started_at: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of a session's state for drawing; its arrays are read-only and never change (views of
    the session's append-only tables: taking a snapshot copies none of them)."""

    state: str  # 'starting' | 'buffering' | 'playing' | 'draining' | 'done' | 'stopped' | 'error'
    started: float
    sample_rate: int | None
    buffered_ms: float
    prebuffer_ms: float
    max_buffer_ms: float
    history_t: np.ndarray  # seconds since start
    history_ms: np.ndarray  # ms buffered
    play_started_s: float | None
    underrun_t: np.ndarray  # seconds since start
    waveform: np.ndarray  # most recent played samples, oldest first
    frames_played: int
    bytes_received: int
    audio_received_s: float
    underrun_episodes: int
    metrics: SessionMetrics | None
    transcript: str = ""  # what a Realtime model said it read (empty for /audio/speech)
    # Long text (SpeakOptions.continuation): which piece is fetched and which is heard (0-based), where each
    # fetched piece's audio starts on the played clock (exact: the decoded frames before it), whether every
    # piece has been received, and the played-audio clock: seconds the device has played of this utterance
    # (frames handed to it minus its reported latency; all of them once played out). Not what was received.
    piece_count: int = 1
    piece_fetching: int = 0
    piece_playing: int = 0
    piece_starts_s: tuple[float, ...] = (0.0,)
    fetch_done: bool = False
    played_s: float = 0.0
    # At each history point: the prebuffer gate in force (ms the output waits for before it plays, or plays
    # again after an underrun) and whether the output was playing (1) or holding (0).
    history_gate_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    history_playing: np.ndarray = field(default_factory=lambda: np.zeros(0))


class SpeakSession:
    def __init__(self, options: SpeakOptions, output_keeper: OutputKeeper | None = None) -> None:
        """`output_keeper`: the device stream to play on, kept open between sessions (the Player's); without
        one the session opens a stream of its own and closes it at its end."""
        self.options = options
        self._own_keeper = output_keeper is None
        self._keeper = OutputKeeper(idle_close_s=None) if output_keeper is None else output_keeper
        self.started = time.monotonic() if options.started_at is None else options.started_at
        self.fetch_marks = FetchMarks(request_sent=None, headers=None, first_byte=None)
        self.state = "starting"
        self._lock = threading.Lock()
        # One row per level point: seconds since start, ms buffered, the gate in force (ms), whether the output
        # played (1) or held (0). Snapshots hold views of it (and of the waveform): nothing is copied per read.
        self._history = RecentRows(_HISTORY_POINTS, columns=4)
        self._waveform: RecentRows | None = None  # the last _WAVEFORM_S of played samples, from _prepare() on
        self._played_chunks: list[np.ndarray] = []
        # The response bodies as received, one per request (only with keep_original), at most
        # max_original_bytes in all: past it none is kept (original_truncated), a partial body is of no use.
        self._originals: list[bytearray] = [bytearray()]
        self._original_total = 0
        self.max_original_bytes = MAX_ORIGINAL_BYTES
        self.original_truncated = False
        self._decoder: StreamDecoder | None = None
        self._output: AudioOutput | None = None
        self._policy: PrebufferPolicy | None = None
        self._ring: FloatRing | None = None
        self._played: FloatRing | None = None
        self.sample_rate: int | None = None
        self.bytes_received = 0
        self.frames_received = 0
        self.first_decoded: float | None = None
        self.last_byte: float | None = None
        self._seen_underruns = 0
        self._task: asyncio.Task | None = None
        self._opening: asyncio.Task | None = None
        self._backend_import: asyncio.Future[None] | None = None  # kept so it is not collected mid-import
        self._stop_requested = False
        self._device_failure: str | None = None  # set by the monitor when the device was lost
        self._drained = asyncio.Event()  # set on the loop once the output says the utterance has played out
        self._piece_marks = self.fetch_marks  # the marks (and response headers) of the piece being fetched
        self._piece_fed = False  # the current piece's decoder has had its first bytes
        # Decoded frames before each fetched piece's audio (appended by the loop; read by snapshot()).
        self._piece_starts: list[int] = [0]
        self._fetch_done = False  # every piece that will be fetched has been decoded
        # What a raw pcm body was taken to be, and why: "override", "header", "realtime" or "assumed".
        self.pcm_rate: int | None = None
        self.pcm_rate_source: str | None = None
        self.metrics: SessionMetrics | None = None
        # Realtime API only: the model's transcript so far (one str assignment: safe to read from any thread).
        self.transcript = ""
        # Realtime API only: one TranscriptTimeline per piece fetched (read-along; appended by the loop).
        self.transcript_timelines: list[TranscriptTimeline] = []

    # --- public ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Silence now and cancel the request (loop thread)."""
        self._stop_requested = True
        if self._output is not None:
            self._output.stop_now()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def marks(self) -> TtfaMarks:
        """The TTFA marks reached so far (any thread): the window's readout shows first sound the moment it
        goes out, not when the session ends. The output's marks are floats written once by the PortAudio
        callback thread (or the stream's open) and only read here; a float read is atomic under the GIL."""
        out, fm = self._output, self.fetch_marks
        return TtfaMarks(
            started=self.started,
            request_sent=fm.request_sent,
            headers=fm.headers,
            first_byte=fm.first_byte,
            first_decoded=self.first_decoded,
            play_started=None if out is None else out.play_started_at,
            first_sound=None if out is None else out.first_sound_at,
            device_latency_s=None if out is None else out.output_latency_s,
        )

    @property
    def played_audio(self) -> np.ndarray:
        """Every sample handed to the device (only with keep_played)."""
        if not self._played_chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._played_chunks)

    @property
    def original_bytes(self) -> bytes:
        """The response body exactly as received (only with keep_original); empty if original_truncated."""
        return b"".join(self._originals)

    @property
    def original_pieces(self) -> list[bytes]:
        """One response body per request (a long text's pieces are separate files, each with its header);
        all empty if original_truncated."""
        return [bytes(piece) for piece in self._originals]

    async def run(self) -> SessionMetrics:
        """Play one utterance to the end (or until stop()); never raises for provider/device/decode faults."""
        self._task = asyncio.current_task()
        error: str | None = None
        error_kind: str | None = None
        completed = False
        monitor: asyncio.Task | None = None
        try:
            self._prepare()
            # PyAV (for a compressed format, the first time) is imported on a worker while the request is out, not
            # by the first chunk on this thread (the window's GUI thread).
            from voicegui.decode.stream_decoder import backend_to_import  # loaded by _prepare()

            backend = backend_to_import(self._format)
            if backend is not None:
                self._backend_import = asyncio.ensure_future(asyncio.to_thread(_import_ahead, backend))
            # The device opens in a worker thread while the request goes out: opening takes tens of ms
            # (measured 48-77 ms on the null sink) that would otherwise delay "request sent"; a stream kept
            # open by the keeper is reused at once. Frames that arrive first simply wait in the ring.
            self._opening = asyncio.create_task(asyncio.to_thread(self._keeper.acquire, self._out))
            monitor = asyncio.create_task(self._monitor())
            pieces = (self.options.request, *self.options.continuation)
            for index, req in enumerate(pieces):
                if index:
                    # Each response is a whole file with its own header: drain this decoder, start a new one.
                    # The ring and the device carry on, so there is no gap beyond the server's own.
                    await self._push(self._dec.flush())
                    self._decoder = _new_decoder(self._format, self._rate)
                    self._piece_fed = False
                    self._originals.append(bytearray())
                    self._piece_starts.append(self.frames_received)
                # Only the first piece's marks are the TTFA's; later pieces' go to a scratch FetchMarks.
                marks = self.fetch_marks if index == 0 else FetchMarks()
                self._piece_marks = marks
                try:
                    await self._fetch(req, marks)
                except FetchError as exc:
                    if exc.kind != "cut" or self.frames_received == 0:
                        raise
                    # A cut stream still plays what arrived; the message says it was cut. Later pieces are
                    # not fetched: the utterance would have a hole.
                    error, error_kind = str(exc), exc.kind
                    break
            self.last_byte = time.monotonic()
            await self._push(self._dec.flush())
            self._fetch_done = True
            await self._opening
            self._out.ended = True
            self.state = "draining"
            await self._wait_drained()
            if error is not None:
                error = f"{error} Played the {self.frames_received / self._rate:.1f} s of audio that arrived."
            completed = error is None
            self.state = "done" if completed else "error"
        except asyncio.CancelledError:
            if self._device_failure is not None and not self._stop_requested:
                # Our own monitor cancelled us: the device is gone. Not a cancellation of the caller's.
                error, error_kind, self.state = self._device_failure, "device", "error"
            else:
                self.state = "stopped"
                if not self._stop_requested:
                    raise
        except FetchError as exc:
            error, error_kind, self.state = str(exc), exc.kind, "error"
        except DecodeError as exc:
            error, error_kind, self.state = str(exc), "decode", "error"
        except OutputError as exc:
            error, error_kind, self.state = str(exc), "device", "error"
        finally:
            if self._opening is not None and not self._opening.done():
                # Never leave a half-opened stream behind: wait for the open, then close it below.
                try:
                    await asyncio.shield(self._opening)
                except (OutputError, asyncio.CancelledError):
                    pass
            if monitor is not None:
                monitor.cancel()
                try:
                    await monitor
                except asyncio.CancelledError:
                    pass
            if self._output is not None:
                if not completed:
                    self._output.stop_now()
                # Played out or silenced: the stream stays open for the next session (or closes, if ours).
                self._keeper.release(self._output)
                if self._own_keeper:
                    self._keeper.close()
                self._drain_played()
            self.metrics = self._build_metrics(completed, error, error_kind)
            self._release_buffers()
            if error:
                log.info("speak ended with an error: %s", error)
        return self.metrics

    def _release_buffers(self) -> None:
        """A finished session is kept for its plots and metrics (the window keeps its last 50), but not its
        audio buffers (~2 MB) nor its decoder, whose FFmpeg context can hold worker threads (opus: 2)."""
        self._ring = None
        self._played = None
        self._decoder = None
        with self._lock:  # the kept rows only, not the room to append (up to twice as much)
            self._history.shrink()
            if self._waveform is not None:
                self._waveform.shrink()
        if self._output is not None:
            # A stream that could not be closed (a hung sound server) may still call back: give it an empty
            # ring rather than None, so it plays silence and stops.
            self._output.ended = True
            self._output.ring = FloatRing(1)
            self._output.played = None

    def snapshot(self, arrays: bool = True) -> Snapshot:
        """The session as it is now. `arrays=False`: the scalars only, with the buffer-level histories and the
        waveform empty (what the progress line, the readout and A/B poll several times a second: copying the
        ~20,000-point histories is most of a snapshot's cost, and only the plots draw them)."""
        out = self._output
        rate = self.sample_rate or OPENAI_SAMPLE_RATE
        if arrays:
            with self._lock:
                history = self._history.view()
                waveform = _EMPTY_WAVE if self._waveform is None else self._waveform.view()
            hist_t, hist_ms, gate_ms, playing = history.T
        else:
            hist_t = hist_ms = gate_ms = playing = _EMPTY
            waveform = _EMPTY_WAVE
        underruns = 0 if out is None else min(out.underrun_episodes, len(out.underrun_times))
        starts = tuple(self._piece_starts)
        played = self._played_frames()
        return Snapshot(
            state=self.state,
            started=self.started,
            sample_rate=self.sample_rate,
            buffered_ms=0.0 if self._ring is None else self._ring.available / rate * 1000,
            prebuffer_ms=0.0 if self._policy is None else self._policy.threshold_s() * 1000,
            max_buffer_ms=self.options.max_buffer_s * 1000,
            history_t=hist_t,
            history_ms=hist_ms,
            play_started_s=None if out is None or out.play_started_at is None else out.play_started_at - self.started,
            underrun_t=np.zeros(0) if out is None else out.underrun_times[:underruns] - self.started,
            waveform=waveform,
            frames_played=0 if out is None else out.frames_played,
            bytes_received=self.bytes_received,
            audio_received_s=self.frames_received / rate,
            underrun_episodes=0 if out is None else out.underrun_episodes,
            metrics=self.metrics,
            transcript=self.transcript,
            piece_count=1 + len(self.options.continuation),
            piece_fetching=len(starts) - 1,
            piece_playing=max(0, bisect_right(starts, played) - 1),
            piece_starts_s=tuple(start / rate for start in starts),
            fetch_done=self._fetch_done,
            played_s=played / rate,
            history_gate_ms=gate_ms,
            history_playing=playing,
        )

    def _played_frames(self) -> int:
        """Frames of this utterance the device has played: those handed to it, less the ones still inside it
        (its reported latency), until it has played out."""
        out = self._output
        if out is None:
            return 0
        played = out.frames_played
        if self.state == "done":
            return played
        return max(0, played - round((out.output_latency_s or 0.0) * (self.sample_rate or OPENAI_SAMPLE_RATE)))

    # --- loop internals -------------------------------------------------------------------------------
    # They run only between _prepare() and _release_buffers(), when the pipeline's parts exist: these say so.
    @property
    def _out(self) -> AudioOutput:
        assert self._output is not None
        return self._output

    @property
    def _dec(self) -> StreamDecoder:
        assert self._decoder is not None
        return self._decoder

    @property
    def _pol(self) -> PrebufferPolicy:
        assert self._policy is not None
        return self._policy

    @property
    def _rng(self) -> FloatRing:
        assert self._ring is not None
        return self._ring

    @property
    def _rate(self) -> int:
        assert self.sample_rate is not None
        return self.sample_rate

    def _prepare(self) -> None:
        opts = self.options
        rate = device_sample_rate(opts.output, OPENAI_SAMPLE_RATE)
        self.sample_rate = rate
        # The Realtime API always sends raw pcm16 24 kHz, whatever format the settings name.
        self._format = "pcm" if uses_realtime(opts.request) else opts.request.response_format
        self._decoder = _new_decoder(self._format, rate)
        self._ring = FloatRing(max(1, int(opts.max_buffer_s * rate)))
        self._played = FloatRing(int(_PLAYED_RING_S * rate))
        with self._lock:
            self._waveform = RecentRows(int(_WAVEFORM_S * rate), dtype=np.float32)
        self._policy = PrebufferPolicy(
            sample_rate=rate,
            fixed_ms=opts.prebuffer_ms,
            expected_audio_s=PrebufferPolicy.expected_duration(
                " ".join(r.text for r in (opts.request, *opts.continuation)), opts.request.speed),
        )
        self._output = AudioOutput(self._ring, rate, opts.output, played=self._played)
        loop = asyncio.get_running_loop()

        def finished() -> None:  # PortAudio's thread: hand the news to the loop
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(self._drained.set)

        self._output.on_finished = finished
        self._output.gate_frames = self._policy.threshold_frames()
        self.state = "buffering"

    async def _on_chunk(self, data: bytes, arrived: float | None = None) -> None:
        """One piece of the body. `arrived`: when it came off the network, if that was earlier than now (an
        early request's body held until this session took it): the prebuffer policy measures delivery by it."""
        if self._opening is not None and self._opening.done():
            self._opening.result()  # re-raises OutputError: no point fetching audio nobody can hear
        if self.bytes_received == 0 and self.fetch_marks.headers is not None:
            self._pol.on_headers(self.fetch_marks.headers)
        if not self._piece_fed:
            self._piece_fed = True
            self._configure_raw_pcm()
        self.bytes_received += len(data)
        if self.options.keep_original and not self.original_truncated:
            self._keep_original(data)
        frames = self._dec.feed(data)
        if len(frames):
            if self.first_decoded is None:
                self.first_decoded = time.monotonic()
                self._pol.on_codec_delay(self._dec.codec_delay_s)
            await self._push(frames, arrived)

    def _configure_raw_pcm(self) -> None:
        """Before a piece's first byte is decoded: what a raw pcm body is (the user's override, else what the
        response's headers announce, else PCM_RATE mono). Containers carry their own and ignore it."""
        rate, channels = announced_pcm_format(self._piece_marks.response_headers)
        if self.options.pcm_rate is not None:
            rate, self.pcm_rate_source = self.options.pcm_rate, "override"
        elif rate is not None:
            self.pcm_rate_source = "header"
        elif uses_realtime(self.options.request):
            self.pcm_rate_source = "realtime"  # the Realtime API's pcm16 is 24 kHz by definition
        else:
            self.pcm_rate_source = "assumed"
        self.pcm_rate = rate or PCM_RATE
        self._dec.set_raw_pcm_format(self.pcm_rate, channels)

    def _keep_original(self, data: bytes) -> None:
        self._original_total += len(data)
        if self._original_total <= self.max_original_bytes:
            self._originals[-1] += data
            return
        # An endless (or just huge) body: keeping it would grow the process without bound, and a cut copy
        # would neither replay nor save as what the server sent. Drop it all; playback is not affected.
        self.original_truncated = True
        self._originals = [bytearray() for _ in self._originals]
        log.info("the response body passed %d bytes: it is not kept for the history or the replay cache",
                 self.max_original_bytes)

    async def _fetch(self, req: SpeechRequest, marks: FetchMarks) -> None:
        if self.options.source is not None:
            await self.options.source(req, marks, self._on_chunk)
        elif uses_realtime(req):
            timeline = TranscriptTimeline()
            self.transcript_timelines.append(timeline)
            await fetch_realtime(req, marks, self._on_chunk, self._on_transcript, timeline)
        else:
            await fetch_speech(req, marks, self._on_chunk)

    def _on_transcript(self, text: str) -> None:
        self.transcript = text

    async def _push(self, frames: np.ndarray, arrived: float | None = None) -> None:
        """Write every frame into the ring; while it is full, wait (backpressure: the network is not read)."""
        if not len(frames):
            return
        self._pol.on_arrival(time.monotonic() if arrived is None else arrived, len(frames) / self._rate)
        self.frames_received += len(frames)
        while True:
            n = self._rng.write(frames)
            frames = frames[n:]
            self._out.gate_frames = min(self._pol.threshold_frames(), self._rng.capacity)
            self._record_level()
            if not len(frames):
                return
            ring_s = self._rng.capacity / self._rate
            await asyncio.sleep(max(_BACKPRESSURE_POLL_S, min(_BACKPRESSURE_WAIT_S, ring_s / 4)))

    async def _wait_drained(self) -> None:
        # A device that hangs never finishes: the monitor notices (check_alive) and cancels run() instead.
        await self._drained.wait()
        if self._out.lost and not self._stop_requested:
            raise OutputError(self._out.failure())

    async def _monitor(self) -> None:
        while True:
            out = self._out
            if out.underrun_episodes > self._seen_underruns:
                for _ in range(out.underrun_episodes - self._seen_underruns):
                    self._pol.on_underrun()
                self._seen_underruns = out.underrun_episodes
            if not out.playing:  # waiting for the gate (grown by the underruns; it falls as time passes: prebuffer.py)
                out.gate_frames = min(self._pol.threshold_frames(time.monotonic()), self._rng.capacity)
            if out.playing and self.state == "buffering":
                self.state = "playing"
            if self._device_failure is None and not self._stop_requested and not out.check_alive():
                # The fetch may be blocked on the network or on a full ring (backpressure), and a hung device
                # never sets `finished`: only a cancel gets run() out in every case.
                self._device_failure = out.failure()
                log.info("%s", self._device_failure)
                if self._task is not None and not self._task.done():
                    self._task.cancel()
            self._drain_played()
            self._record_level()
            playing_long = out.playing and self._rng.available > 2 * _MONITOR_PLAYING_S * self._rate
            await asyncio.sleep(_MONITOR_PLAYING_S if playing_long else _MONITOR_PERIOD_S)

    def _record_level(self) -> None:
        now, out = time.monotonic(), self._out
        with self._lock:
            self._history.append(now - self.started, self._rng.available / self._rate * 1000,
                                 out.gate_frames / self._rate * 1000, 1.0 if out.playing else 0.0)

    def _drain_played(self) -> None:
        played = self._played
        if played is None or played.available == 0:
            return
        chunk = np.empty(played.available, dtype=np.float32)
        played.read_into(chunk)
        if self.options.keep_played:
            self._played_chunks.append(chunk)
        with self._lock:
            if self._waveform is not None:
                self._waveform.extend(chunk)

    def _build_metrics(self, completed: bool, error: str | None, error_kind: str | None) -> SessionMetrics:
        out, dec, fm = self._output, self._decoder, self.fetch_marks
        raw_pcm = dec is not None and dec.detected_format == "pcm"
        rate = self.sample_rate or OPENAI_SAMPLE_RATE
        audio_s = self.frames_received / rate
        rtf = None
        if fm.first_byte is not None and self.last_byte is not None and self.last_byte > fm.first_byte:
            rtf = round(audio_s / (self.last_byte - fm.first_byte), 3)
        episodes = 0 if out is None else out.underrun_episodes
        times = () if out is None else tuple(
            round((t - self.started) * 1000, 1) for t in out.underrun_times[: min(episodes, len(out.underrun_times))]
        )
        marks = self.marks()
        return SessionMetrics(
            marks=marks,
            requested_format="pcm" if uses_realtime(self.options.request) else self.options.request.response_format,
            detected_format=None if dec is None else dec.detected_format,
            format_warning=None if dec is None else dec.format_mismatch,
            sample_rate=self.sample_rate,
            bytes_received=self.bytes_received,
            audio_received_s=round(audio_s, 4),
            audio_played_s=0.0 if out is None else round(out.frames_played / rate, 4),
            stream_rtf=rtf,
            underrun_episodes=episodes,
            underrun_ms=0.0 if out is None else round(out.underrun_frames / rate * 1000, 1),
            underrun_times_ms=times,
            device_underflows=0 if out is None else out.device_underflows,
            pcm_rate=self.pcm_rate if raw_pcm else None,
            pcm_rate_source=self.pcm_rate_source if raw_pcm else None,
            prebuffer_ms=None if self._policy is None else round(self._policy.threshold_s() * 1000, 1),
            completed=completed,
            stopped=self._stop_requested,
            truncated=bool(dec is not None and dec.truncated),
            error=error,
            error_kind=error_kind,
        )
