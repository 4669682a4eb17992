"""Player: exactly one thing plays. Every Speak, history replay, A/B side, line-up voice, `voicegui speak` and
benchmark run goes through one Player, which stops what plays (and waits until its session has let go of the
device stream) before it starts the next, so two sessions never overlap and the newest request wins.

What it owns:
* a generation counter: a `start()` that was overtaken by a newer start (or a `stop()`) while it waited for
  the old session to release the device starts nothing and returns None;
* its state (`PlayerState`) with change callbacks (`on_state`), and `on_started` / `on_finished` callbacks
  with the `Playback` concerned, which is all a UI needs to render it;
* the history hook: an async callable run after each recorded Playback ends (in the background, tracked so
  `wait_background()` can finish them before the app quits);
* the body cache (`BodyCache`): with `use_cache=True`, a request whose whole body was received before is
  replayed from memory (no request), and a live body that arrived whole is kept for next time;
* a bounded log of recent Playbacks (`recent`), for the UI's history of what ran and for tests;
* the output device stream (`output`, an OutputKeeper): kept open between Playbacks and reused while the
  device settings match (no device open per Speak); closed after output.IDLE_CLOSE_S idle, by `close()`, or
  when the Player is garbage-collected.

Threads: everything here runs on the one asyncio loop thread (qasync's in the window, asyncio.run's in the
CLI); callbacks are called on it. The sessions it runs start PortAudio's callback thread themselves. No Qt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.metrics import SessionMetrics
from voicegui.stream.output import OutputKeeper
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions, SpeakSession

log = logging.getLogger(__name__)

RECENT_PLAYBACKS = 50  # finished Playbacks kept for the UI (each holds its session's plots and metrics)
CACHE_ENTRIES = 8  # response bodies kept for instant replays (oldest dropped first); a few MB at most


class PlayerState(enum.Enum):
    IDLE = "idle"  # nothing plays
    STARTING = "starting"  # stopping what played, then starting the next Playback
    PLAYING = "playing"  # a session runs (buffering, playing or draining)


@dataclass(eq=False)
class Playback:
    """One thing the player plays: its session and what the UI and the history need to know about it.

    `kind` says who asked ("speak", "replay", "ab", "lineup", "cli", ...), `title` names it in messages,
    `extra` goes into its history entries. `superseded` is set when a newer start() or a stop() ended it.
    """

    options: SpeakOptions
    session: SpeakSession
    kind: str = "speak"
    title: str = ""
    record: bool = True
    provider: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    replayed: bool = False  # played from the body cache, not fetched
    metrics: SessionMetrics | None = None
    superseded: bool = False
    failure: str | None = None  # an unexpected exception in the session (a bug), as a message for the user
    entered_at: float | None = None  # monotonic: when the session began running
    left_at: float | None = None  # ... and when it ended
    task: asyncio.Task | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    history_ids: list[str | None] = field(default_factory=list)  # one per piece, set by the history hook
    recorded: asyncio.Event = field(default_factory=asyncio.Event)  # the history hook has run (or none will)

    @property
    def request(self) -> SpeechRequest:
        return self.options.request

    @property
    def transcript(self) -> str:
        """What a Realtime model said it read (empty for /audio/speech)."""
        return self.session.transcript

    @property
    def whole_body(self) -> bool:
        """The whole response arrived and was kept (fetched to the end without an error, within the session's
        bound on what it keeps)."""
        m = self.metrics
        return (m is not None and m.error is None and self.session.last_byte is not None
                and not self.session.original_truncated)


HistoryHook = Callable[[Playback], Awaitable[None]]
Build = Callable[[], SpeakOptions]


def cache_key(request: SpeechRequest) -> tuple[Any, ...]:
    """What makes two requests' bodies interchangeable (the key and the buffer knobs do not)."""
    return (request.base_url, request.model, request.voice, request.response_format, request.text, request.speed,
            request.instructions)


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    pcm_rate: int | None = None  # what a raw pcm body was played at (its response's headers are not kept)


class BodyCache:
    """Whole response bodies by request, least recently used dropped first. Loop thread only."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self.entries = entries
        self._bodies: OrderedDict[tuple[Any, ...], CachedBody] = OrderedDict()

    def get(self, request: SpeechRequest) -> CachedBody | None:
        key = cache_key(request)
        cached = self._bodies.get(key)
        if cached is not None:
            self._bodies.move_to_end(key)
        return cached

    def put(self, request: SpeechRequest, body: bytes, pcm_rate: int | None = None) -> None:
        self._bodies[cache_key(request)] = CachedBody(body, pcm_rate)
        self._bodies.move_to_end(cache_key(request))
        while len(self._bodies) > self.entries:
            self._bodies.popitem(last=False)

    def clear(self) -> None:
        self._bodies.clear()

    def __len__(self) -> int:
        return len(self._bodies)


class Player:
    """See the module docstring. Construct and use on the loop thread."""

    def __init__(self, history_hook: HistoryHook | None = None, cache_entries: int = CACHE_ENTRIES,
                 recent: int = RECENT_PLAYBACKS) -> None:
        self.history_hook = history_hook
        self.cache = BodyCache(cache_entries)
        self.current: Playback | None = None
        self.recent: deque[Playback] = deque(maxlen=recent)
        self.output = OutputKeeper()
        # A Player used once and dropped (`await Player().play(...)`) releases its device when it goes.
        weakref.finalize(self, self.output.close)
        self._state = PlayerState.IDLE
        self._generation = 0
        self._closed = False
        self._background: set[asyncio.Future] = set()  # history hooks in flight (kept referenced)
        self._state_listeners: list[Callable[[PlayerState], Any]] = []
        self._started_listeners: list[Callable[[Playback], Any]] = []
        self._finished_listeners: list[Callable[[Playback], Any]] = []

    # --- state ----------------------------------------------------------------------------------------
    @property
    def state(self) -> PlayerState:
        return self._state

    def on_state(self, callback: Callable[[PlayerState], Any]) -> None:
        """`callback(state)` on every state change."""
        self._state_listeners.append(callback)

    def on_started(self, callback: Callable[[Playback], Any]) -> None:
        """`callback(playback)` right after a Playback became current (its session about to run)."""
        self._started_listeners.append(callback)

    def on_finished(self, callback: Callable[[Playback], Any]) -> None:
        """`callback(playback)` when a Playback's session has ended and released the device."""
        self._finished_listeners.append(callback)

    def _set_state(self, state: PlayerState) -> None:
        if state is self._state:
            return
        self._state = state
        for callback in list(self._state_listeners):
            callback(state)

    def _settle(self) -> None:
        """The state once no start() is pending: PLAYING while the current Playback runs, else IDLE."""
        running = self.current is not None and not self.current.done.is_set()
        self._set_state(PlayerState.PLAYING if running else PlayerState.IDLE)

    @property
    def generation(self) -> int:
        """Bumped by every start() and stop(): a caller playing a sequence (a line-up) notices, between its
        items, that someone else started or stopped something."""
        return self._generation

    def is_busy(self) -> bool:
        """Something plays or is about to."""
        return self._state is not PlayerState.IDLE

    @property
    def session(self) -> SpeakSession | None:
        """The current (or last) Playback's session: what the plots and readouts show."""
        return None if self.current is None else self.current.session

    # --- playing --------------------------------------------------------------------------------------
    async def start(self, options: SpeakOptions | Build, *, kind: str = "speak", title: str = "",
                    record: bool = True, provider: str = "", extra: dict[str, Any] | None = None,
                    use_cache: bool = False) -> Playback | None:
        """Stop what plays (waiting until its device is closed), then start `options` and return its Playback
        (running in a task; await `playback.done`). None when a newer start()/stop() came meanwhile or the
        player is closed. `options` may be a callable, called after the stop: a ValueError it raises (a
        message for the user) propagates. With `use_cache`, a body cached for the same request is replayed
        instead of fetched (not recorded again: the history has the live play), and a whole live body is
        cached."""
        self._generation += 1
        generation = self._generation
        self._set_state(PlayerState.STARTING)
        try:
            await self._stop_current()
            if generation != self._generation or self._closed:
                return None
            opts = options() if callable(options) else options
            replayed = False
            if use_cache:
                cached = self.cache.get(opts.request)
                if cached is not None:
                    opts = dataclasses.replace(opts, source=replay_source(cached.body), pcm_rate=cached.pcm_rate)
                    replayed, record = True, False
                else:
                    opts = dataclasses.replace(opts, keep_original=True)
            playback = Playback(options=opts, session=SpeakSession(opts, self.output), kind=kind, title=title,
                                record=record, provider=provider, extra=dict(extra or {}), replayed=replayed)
            self.current = playback
            self.recent.append(playback)
            playback.task = asyncio.ensure_future(self._run(playback, use_cache))
            for callback in list(self._started_listeners):
                callback(playback)
            return playback
        finally:
            if generation == self._generation:
                self._settle()

    async def play(self, options: SpeakOptions | Build, **kwargs: Any) -> Playback | None:
        """start(), then wait until that Playback has ended; same arguments and None as start()."""
        playback = await self.start(options, **kwargs)
        if playback is not None:
            await playback.done.wait()
        return playback

    async def stop(self) -> None:
        """Silence what plays and wait until its device is closed; a start() still waiting is abandoned."""
        self._generation += 1
        try:
            await self._stop_current()
        finally:
            self._settle()

    async def close(self) -> None:
        """stop(), refuse further starts, let the history hooks in flight finish and close the output device.
        Safe to call again."""
        self._closed = True
        await self.stop()
        await self.wait_background()
        await asyncio.to_thread(self.output.close)

    async def wait_background(self) -> None:
        """Wait for the history hooks in flight."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def background_pending(self) -> int:
        return len(self._background)

    async def _stop_current(self) -> None:
        playback = self.current
        if playback is None or playback.done.is_set():
            return
        playback.superseded = True
        playback.session.stop()
        if playback.entered_at is None and playback.task is not None:
            # Its task has not begun, so session.stop() had no task to cancel: cancel ours before it begins
            # (a cancelled task that never started runs none of _run, so end the Playback here).
            playback.task.cancel()
            self._end(playback)
        await playback.done.wait()

    async def _run(self, playback: Playback, use_cache: bool) -> None:
        playback.entered_at = time.monotonic()
        try:
            playback.metrics = await playback.session.run()
        except Exception as exc:  # run() reports provider/device faults in its metrics; anything else is a bug
            log.exception("%s failed unexpectedly", playback.kind)
            playback.failure = f"Internal error while playing: {exc}"
        finally:
            if use_cache and not playback.replayed and playback.whole_body:
                self.cache.put(playback.request, playback.session.original_bytes, playback.session.pcm_rate)
            self._end(playback)

    def _end(self, playback: Playback) -> None:
        playback.left_at = time.monotonic()
        playback.done.set()
        if playback.record and self.history_hook is not None and playback.metrics is not None:
            task = asyncio.ensure_future(self._record(playback))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            playback.recorded.set()
        for callback in list(self._finished_listeners):
            callback(playback)
        if playback is self.current and self._state is PlayerState.PLAYING:
            self._settle()

    async def _record(self, playback: Playback) -> None:
        assert self.history_hook is not None
        try:
            await self.history_hook(playback)
        except Exception:  # the history must never cost a Speak; the hook reports its own expected errors
            log.exception("the history hook failed")
        finally:
            playback.recorded.set()
