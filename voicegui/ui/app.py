"""The window's process: one QApplication, one qasync event loop, one MainWindow; start-up and shutdown.

Threads: everything here runs on the main thread, which is both the Qt GUI thread and the asyncio loop's
thread (qasync runs asyncio on top of Qt's event loop). The streaming core's fetch/decode tasks run on that
loop; the PortAudio callback thread is started and stopped by the stream package, never touched here.

The built-in voices (voicegui.server.embedded.BuiltinServer) start once per run, after the window is shown:
the server with lazy engines in a worker thread (its voices are listed at once), then only the default voice's
engine is loaded, in another worker thread (~0.5 s); the window is told when each step is done (set_builtin,
then set_builtin_ready) and plays a Speak clicked meanwhile once the voices are ready. Other engines load on
their first Speak. The plots (pyqtgraph) are built after that (a Speak clicked sooner builds them): their
~0.35 s on this thread would hold the GIL the engine's load needs (default voice ready 1.91 -> 1.62 s). The
server runs on its own thread; it is stopped (in a worker thread: it joins) after the window has closed.
PySide6's import hook reads each module imported after it through ui/pyside_import_hook.py (installed by
`ensure_application`, before the window's imports). After each start-up step that imports many modules, any
module sources linecache holds are dropped (`forget_module_sources`); "start-up done" is logged after the last
one, once what was loaded is frozen out of the garbage collector's full collections (long_lived.py).

The openai SDK a Speak needs (~12 MB idle, ~0.23 s of imports) is imported in a worker thread at the user's
first sign of meaning to Speak (ui/first_intent.py: the text edited, or once the start-up is done a key or
mouse-button press, the pointer on Speak), after the start-up; "openai SDK preloaded" is logged then. A Speak
with no sign before it imports it itself.

The palette is the theme controller's (ui/theme.py): it follows the system's light/dark scheme unless the
window's View > Theme chose one; the window applies the saved choice before it is shown.

Shutdown: closing the window runs MainWindow's async close handler (it stops the current Speak, waits
for the device to be released and saves the settings), then the built-in server stops, the main coroutine
returns and the loop is closed.
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import os
import sys
from collections.abc import Callable
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from voicegui import crash
from voicegui.long_lived import freeze_loaded
from voicegui.ui import pyside_import_hook, theme
from voicegui.ui.display import platform_guard
from voicegui.ui.event_loop import KeptNotifierLoop
from voicegui.ui.first_intent import FirstIntent

if TYPE_CHECKING:
    from voicegui.server.embedded import BuiltinServer
    from voicegui.ui.main_window import MainWindow

log = logging.getLogger(__name__)

APP_NAME = "voicegui"
ICON_NAME = "voicegui.svg"
STARTUP_DONE = "start-up done"  # logged when the idle window has imported all it imports before any input
SDK_PRELOADED = "openai SDK preloaded"  # logged once the first sign of intent has imported the SDK


def icon_path() -> Path | None:
    """Where voicegui.svg is: in a frozen build, inside the installed package, or in the source tree."""
    candidates: list[Path] = []
    frozen_root = getattr(sys, "_MEIPASS", None)  # PyInstaller unpacks data files here
    if frozen_root:
        candidates.append(Path(frozen_root) / "resources" / ICON_NAME)
    try:
        candidates.append(Path(str(resources.files("voicegui") / "resources" / ICON_NAME)))
    except (ModuleNotFoundError, TypeError):
        pass
    # Source checkout / editable install: <repo>/resources next to the voicegui package.
    candidates.append(Path(__file__).resolve().parents[2] / "resources" / ICON_NAME)
    for path in candidates:
        if path.is_file():
            return path
    return None


def app_icon() -> QIcon:
    """The application icon, or an empty icon (and a debug line) when the file is not shipped."""
    path = icon_path()
    if path is None:
        log.debug("app icon %s not found", ICON_NAME)
        return QIcon()
    return QIcon(str(path))


def install_asyncgen_hooks(loop: asyncio.AbstractEventLoop) -> None:
    """Point sys.set_asyncgen_hooks at ``loop``'s hooks.

    qasync never calls BaseEventLoop.run_forever, which is where asyncio installs them, so without this an
    async generator left early (httpx's iter_bytes when Stop is pressed) is finalised outside the loop and
    prints errors. The hooks are the loop's own bound methods, so it is the standard asyncio behaviour.
    """
    sys.set_asyncgen_hooks(
        firstiter=loop._asyncgen_firstiter_hook,  # type: ignore[attr-defined]  # BaseEventLoop private, not in typeshed
        finalizer=loop._asyncgen_finalizer_hook,  # type: ignore[attr-defined]  # BaseEventLoop private, not in typeshed
    )


class AppLoop(KeptNotifierLoop):
    """The app's asyncio loop: qasync on the process's QApplication (with kept socket notifiers, ui/event_loop.py),
    with the async-generator hooks installed.

    On close it puts the previous hooks back (so later non-Qt code does not inherit hooks bound to a closed
    loop) and kills the Qt timers qasync keeps for call_later handles: qasync keeps one registered for every
    handle until it fires, cancelled or not (HTTP request timeouts, wait_for deadlines), and one fired
    after its loop was gone was delivered to a deleted QObject and crashed the process (SIGSEGV in
    QTimerInfoList::activateTimers under gdb). The app has one loop per process; the tests and
    `voicegui bench --window` make one after another.
    """

    def __init__(self) -> None:
        super().__init__(ensure_application([]))
        self._old_hooks = sys.get_asyncgen_hooks()
        install_asyncgen_hooks(self)

    def close(self) -> None:
        sys.set_asyncgen_hooks(*self._old_hooks)
        timer = self._timer
        callbacks = getattr(timer, "_SimpleTimer__callbacks", {})
        for timer_id in list(callbacks):
            timer.killTimer(timer_id)
        callbacks.clear()
        super().close()


def ensure_application(argv: list[str] | None = None,
                       on_platform_failure: Callable[[str], NoReturn] | None = None) -> QApplication:
    """The process's QApplication (created once), named and with the app icon.

    With `on_platform_failure`, Qt failing to start any display platform calls it with one sentence (it must end
    the process) instead of Qt aborting (ui/display.py)."""
    pyside_import_hook.install()  # before the window's ~1,000 imports: see that module
    app = QApplication.instance()
    if app is None:
        with platform_guard(on_platform_failure, os.environ) if on_platform_failure else nullcontext():
            app = QApplication(list(argv) if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    # The main coroutine decides when to quit (after the async close handler); Qt quitting by itself
    # would stop the loop under a still-running coroutine.
    app.setQuitOnLastWindowClosed(False)
    # Made before any window: it notes the platform's own style, which "follow the system" goes back to.
    theme.controller()
    return app


def forget_module_sources() -> None:
    """Drop the module sources linecache holds (tracebacks read them from disk again when they need them).

    PySide6's import hook (shiboken's `__feature_import__`) reads the source of every module imported after
    PySide6 to see whether it mentions PySide6; through `inspect.getsource`, linecache kept each file's lines:
    ~35 MB of str for the ~1,200 modules the window imports after Qt. ui/pyside_import_hook.py now answers it
    without linecache; this stays for a PySide6 whose hook that cannot replace, and for whatever else fills
    the cache. Called on the GUI thread after each step of the start-up that imports many modules, so the
    next step reuses the freed memory."""
    linecache.clearcache()


def lazy_builtin_server() -> BuiltinServer:
    """The built-in server with lazy engines: it lists every voice at once and loads none of the neural
    models (each costs ~0.5 s and ~100-150 MB); blocks for the engines' probes and the server thread's start."""
    from voicegui.server.embedded import BuiltinServer

    return BuiltinServer(lazy=True)


async def start_builtin(window: MainWindow,
                        make_server: Callable[[], BuiltinServer] = lazy_builtin_server) -> BuiltinServer | None:
    """Start the built-in server off the GUI thread, hand it to the window (its voices are listed at once), then
    load the default voice's engine, also off the GUI thread, and tell the window the voices are ready (a Speak
    queued meanwhile plays then). None if the server cannot run; the window is told why in one sentence."""
    from voicegui.server.embedded import BuiltinUnavailable
    from voicegui.server.engines.base import EngineError
    from voicegui.ui.builtin_voices import load_engine, pending_engine

    try:
        server = await asyncio.to_thread(make_server)
    except (BuiltinUnavailable, OSError, RuntimeError) as exc:
        log.warning("built-in voices unavailable: %s", exc)
        window.set_builtin_error(f"The built-in voices are not available: {exc}. Choose another provider "
                                 "under Voice, or install what the message names.")
        return None
    forget_module_sources()
    if window.is_closing():
        return server
    window.set_builtin(server, ready=False)
    engine = pending_engine(server, server.default_voice)
    if engine is not None:
        try:
            await asyncio.to_thread(load_engine, engine)
            forget_module_sources()
        except EngineError as exc:
            log.warning("default built-in voice unavailable: %s", exc)
            if not window.is_closing():
                window.set_builtin_error(f"The built-in voice {server.default_voice!r} could not be loaded "
                                         f"({exc}); choose another voice under Voice.")
            return server
    if not window.is_closing():
        window.set_builtin_ready()
        # Smoke checks (CI's fresh-root `make run`) wait for this line: the default voice can speak now.
        log.info("built-in voices ready")
    return server


async def _preload_sdk(intent: asyncio.Future[Any], started: asyncio.Future[Any]) -> None:
    """Import the openai SDK in a worker thread at the user's first sign of meaning to Speak (`intent`, see
    ui/first_intent.py), not at start-up: idle it costs ~12 MB resident; at that sign a Speak is usually still
    well over the import's ~0.23 s away, so it finds the SDK loaded. Not before the start-up's own steps are
    over (`started`): the import would compete with the default voice's load for the cores and the GIL."""
    from voicegui.stream.fetch import import_sdk

    await asyncio.wait({intent})
    await asyncio.wait({started})
    await import_sdk()
    forget_module_sources()
    freeze_loaded("the openai SDK")
    log.info(SDK_PRELOADED)


def preload_sdk_on_intent(window: MainWindow, started: asyncio.Future[Any]) -> tuple[FirstIntent, asyncio.Task[None]]:
    """Watch `window` for the first sign of intent (its text's edits from now, all input once `started` is
    done) and then preload the SDK (`_preload_sdk`): the watcher (to stop when the window closes) and the
    preload's task. Anything starting to play stops the watcher: its Speak imports the SDK itself if it is not
    in yet, and its events need not pass through the watcher."""
    intent: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_intent(reason: str) -> None:
        if not intent.done():
            intent.set_result(reason)

    watcher = FirstIntent(window.speak_button, window.text_edit, on_intent)
    started.add_done_callback(lambda _started: watcher.watch_input())
    window.player.on_started(lambda _playback: watcher.stop())
    return watcher, asyncio.ensure_future(_preload_sdk(intent, started))


def _install_crash_dialog(window: QWidget, loop: asyncio.AbstractEventLoop) -> None:
    """Uncaught errors: logged (redacted) to the rotating file by voicegui.crash, and shown in one non-modal
    dialog at a time. The hook may fire on any thread, so the dialog is built on the GUI thread via the loop."""

    def show_on_gui_thread(summary: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "voicegui: something went wrong",
                          f"{summary}\n\nvoicegui keeps running. Details are in {crash.log_file()}.",
                          QMessageBox.StandardButton.Close, window)
        box.setTextFormat(Qt.TextFormat.PlainText)  # the summary quotes an exception: never rich text
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: crash.dialog_closed())
        box.show()

    def show(summary: str) -> None:
        loop.call_soon_threadsafe(show_on_gui_thread, summary)

    crash.install_excepthook(show)
    crash.install_loop_handler(loop)


async def _main_window_session() -> int:
    from voicegui.ui import global_shortcut, instance
    from voicegui.ui.main_window import MainWindow
    from voicegui.ui.tray import install_tray

    loop = asyncio.get_running_loop()
    try:  # one window per user: other `voicegui` commands hand their requests to this one (issue 19)
        commands = instance.claim_socket()
    except instance.AlreadyRunning:
        return 0  # that window was raised instead
    window = MainWindow()
    handler = instance.attach(commands, window)
    tray = install_tray(window, handler, app_icon())
    shortcuts = global_shortcut.install(window, handler, tray)  # the desktop's shortcut portal, where it exists
    _install_crash_dialog(window, loop)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    # Python runs signal handlers only between bytecodes; while Qt sits in C++ waiting for events a Ctrl+C
    # would wait for the next event. A cheap periodic timer gives the interpreter a chance to run it.
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)
    window.show()
    forget_module_sources()

    builtin_task = asyncio.ensure_future(start_builtin(window))

    async def build_plots() -> None:
        # After the default voice is ready (or could not be): importing pyqtgraph and building the plots takes
        # ~0.35 s on this thread, holding the GIL that the engine's G2P tables and warm-up need on theirs (they
        # ran ~10x slower meanwhile). A Speak clicked before then builds the plots itself.
        await asyncio.wait({builtin_task})
        if not window.is_closing():
            window.build_plots()
            forget_module_sources()
            log.info("plots built")

    plots_task = asyncio.ensure_future(build_plots())

    async def settle() -> None:
        await asyncio.wait({builtin_task, plots_task})
        freeze_loaded("the window's start-up")
        log.info(STARTUP_DONE)

    settled_task = asyncio.ensure_future(settle())
    watcher, sdk_task = preload_sdk_on_intent(window, settled_task)
    log.info("voicegui ready")
    try:
        await closed.wait()
    except asyncio.CancelledError:  # Ctrl+C: asyncio.Runner cancels this task; release the device first
        await window.shutdown()
        raise
    finally:
        commands.close()
        await shortcuts.close()
        if tray is not None:
            tray.icon.hide()
        heartbeat.stop()
        watcher.stop()
        sdk_task.cancel()
        settled_task.cancel()
        plots_task.cancel()
        # The server thread must not outlive the window; wait for a start still in progress, then stop it.
        server = await asyncio.shield(builtin_task)
        if server is not None:
            await asyncio.to_thread(server.stop)
    return 0


def run_window(argv: list[str] | None = None, on_platform_failure: Callable[[str], NoReturn] | None = None) -> int:
    """Show the main window and run until it is closed; returns the process exit code. `on_platform_failure`:
    as for ensure_application."""
    ensure_application(argv, on_platform_failure)
    with asyncio.Runner(loop_factory=AppLoop) as runner:
        try:
            return runner.run(_main_window_session())
        except KeyboardInterrupt:
            log.info("interrupted")
            return 130
