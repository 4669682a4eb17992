"""KeptNotifierLoop: qasync's event loop, with one Qt socket notifier per file descriptor for as long as the loop
lives, switched on and off instead of made anew.

Why: asyncio's transports stop reading when their buffer is full (``pause_reading`` -> ``_remove_reader``) and
start again when it drains (``resume_reading`` -> ``_add_reader``). qasync 0.28 answers every ``_add_reader``
with a new ``QSocketNotifier`` and a new lambda connected to its ``activated`` signal; PySide6's ``connect`` of a
Python callable costs ~0.4 ms, and a Speak in the window resumes reading ~45 times a second (272 times over a 6 s
Speak, profiled: ~5 % of the GUI thread's time). Here each (fd, read/write) keeps its notifier and its one
connection; adding a reader sets the callback and enables the notifier, removing it clears the callback and
disables it. What the loop does is qasync's: a ready notifier is disabled, the callback runs on the next loop
pass (``call_soon``), and the notifier is enabled again after it unless the reader was removed or replaced
meanwhile (a callback queued for a reader that was replaced is dropped, as qasync drops it).

``call_later`` (and so ``call_soon`` and ``call_at``) skips qasync's ``iscoroutinefunction`` check (``inspect``,
~30 us a call, ~250 calls a second while speaking) unless the loop is in debug mode: asyncio's own loops make
that check only in debug mode too.

``run_until_complete`` is qasync's, except for its last step: after the loop has stopped, qasync processes Qt's
pending events once more, and did so with no running loop set. A task step queued as the loop stopped (an HTTP
answer that had just arrived, a coroutine woken by the main coroutine's end) then ran outside asyncio, and
asyncio's and anyio's code in it failed with "no running event loop" (a test of the window's voice listing, in
CI). Here that pass runs with this loop as the running one, as every other step does. The window's process ends
with asyncio.Runner, whose close() then cancels what is left on the loop in the same way.

Threads: GUI thread only (the loop's thread, which is Qt's); ``call_soon_threadsafe`` is qasync's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any

import qasync
from PySide6.QtCore import QCoreApplication, QEventLoop, QSocketNotifier


class _Watch:
    """One descriptor's notifier (read or write) and the callback registered on it now (None: not watched)."""

    __slots__ = ("notifier", "callback", "args", "generation")

    def __init__(self, notifier: QSocketNotifier) -> None:
        self.notifier = notifier
        self.callback: Callable[..., object] | None = None
        self.args: tuple[Any, ...] = ()
        self.generation = 0  # one more at each add/remove: a callback queued before it is stale


class KeptNotifierLoop(qasync.QEventLoop):
    """qasync's loop with kept socket notifiers (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Before qasync's __init__: asyncio's registers its self-pipe reader from there.
        self._watches: dict[tuple[object, QSocketNotifier.Type], _Watch] = {}
        self.notifiers_made = 0  # QSocketNotifiers made over the loop's life (tests and diagnostics)
        super().__init__(*args, **kwargs)

    # --- readers and writers: asyncio's hooks, called by add_reader() and by the transports ----------------
    def _add_reader(self, fd: object, callback: Callable[..., object], *args: Any) -> None:
        self._watch(fd, QSocketNotifier.Type.Read, callback, args)

    def _remove_reader(self, fd: object) -> bool:
        return self._unwatch(fd, QSocketNotifier.Type.Read)

    def _add_writer(self, fd: object, callback: Callable[..., object], *args: Any) -> None:
        self._watch(fd, QSocketNotifier.Type.Write, callback, args)

    def _remove_writer(self, fd: object) -> bool:
        return self._unwatch(fd, QSocketNotifier.Type.Write)

    def _watch(self, fd: object, kind: QSocketNotifier.Type, callback: Callable[..., object],
               args: tuple[Any, ...]) -> None:
        self._check_closed()
        watch = self._watches.get((fd, kind))
        if watch is None:
            number = fd if isinstance(fd, int) else fd.fileno()  # type: ignore[attr-defined]  # a file object
            watch = _Watch(QSocketNotifier(number, kind))
            self.notifiers_made += 1
            watch.notifier.activated.connect(lambda *_: self._on_notifier(watch))
            self._watches[(fd, kind)] = watch
        watch.callback, watch.args = callback, args
        watch.generation += 1
        watch.notifier.setEnabled(True)

    def _unwatch(self, fd: object, kind: QSocketNotifier.Type) -> bool:
        if self.is_closed():
            return False
        watch = self._watches.get((fd, kind))
        if watch is None or watch.callback is None:
            return False
        watch.notifier.setEnabled(False)
        watch.callback, watch.args = None, ()
        watch.generation += 1
        return True

    def _on_notifier(self, watch: _Watch) -> None:
        """Qt says the descriptor is ready: run the callback on the next pass, with the notifier off meanwhile
        (it is level-triggered and would fire again and again until the callback has read). Off, it fires
        again only once enabled by ``_run_watch`` or by a new registration, so one call is queued per readiness."""
        watch.notifier.setEnabled(False)
        if watch.callback is not None:
            self.call_soon(self._run_watch, watch, watch.generation)

    def _run_watch(self, watch: _Watch, generation: int) -> None:
        if watch.generation != generation or watch.callback is None:
            return  # removed or replaced since it was ready; a new registration enabled the notifier itself
        try:
            watch.callback(*watch.args)
        finally:
            # The callback may have removed the reader (pause_reading) or put another in its place.
            if watch.generation == generation:
                watch.notifier.setEnabled(True)

    # --- callbacks ---------------------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,
                   context: contextvars.Context | None = None) -> asyncio.Handle:
        """qasync's call_later (call_soon and call_at come through here) without its coroutine check outside
        debug mode (see the module docstring)."""
        if self.get_debug():
            return super().call_later(delay, callback, *args, context=context)
        return self._add_callback(asyncio.Handle(callback, args, self, context=context), delay)

    # --- running -----------------------------------------------------------------------------------------
    def run_until_complete(self, future: Any) -> Any:
        """qasync's run_until_complete, with its last pass over Qt's pending events run as part of this loop
        (see the module docstring)."""
        if self.is_running():
            raise RuntimeError("Event loop already running")
        task = asyncio.ensure_future(future, loop=self)

        def stop(_done: object) -> None:
            self.stop()

        task.add_done_callback(stop)
        try:
            self.run_forever()
        finally:
            task.remove_done_callback(stop)
        app = QCoreApplication.instance()
        dispatcher = app.eventDispatcher() if app is not None else None
        if dispatcher is not None:
            asyncio.events._set_running_loop(self)  # what run_forever does around Qt's exec (qasync, asyncio)
            try:
                dispatcher.processEvents(QEventLoop.ProcessEventsFlag.AllEvents)
            finally:
                asyncio.events._set_running_loop(None)
        if not task.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return task.result()

    def close(self) -> None:
        super().close()  # refuses a running loop before anything is torn down; removes the self-pipe's reader
        for watch in self._watches.values():
            watch.notifier.setEnabled(False)
            watch.notifier.activated.disconnect()
            watch.callback, watch.args = None, ()
        self._watches.clear()
