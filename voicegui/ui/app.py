"""The window's process: one QApplication, one qasync event loop, one MainWindow; start-up and shutdown.

Threads: everything here runs on the main thread, which is both the Qt GUI thread and the asyncio loop's
thread (qasync runs asyncio on top of Qt's event loop). The streaming core's fetch/decode tasks run on that
loop; the PortAudio callback thread is started and stopped by the stream package, never touched here.

The built-in voices (voicegui.server.embedded.BuiltinServer) start once per run, in a worker thread (loading
the engines takes ~1 s) while the window is already shown; the window gets the server when it is up. The
server runs on its own thread; it is stopped (in a worker thread: it joins) after the window has closed.

Shutdown: closing the window runs MainWindow's async close handler (it stops the current Speak, waits
for the device to be released and saves the settings), then the built-in server stops, the main coroutine
returns and the loop is closed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import qasync
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from voicegui import crash

if TYPE_CHECKING:
    from voicegui.server.embedded import BuiltinServer
    from voicegui.ui.main_window import MainWindow

log = logging.getLogger(__name__)

APP_NAME = "voicegui"
ICON_NAME = "voicegui.svg"


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


class AppLoop(qasync.QEventLoop):
    """The app's asyncio loop: qasync on the process's QApplication, with the async-generator hooks installed.

    On close it puts the previous hooks back (so later non-Qt code does not inherit hooks bound to a closed
    loop) and kills the Qt timers qasync keeps for call_later handles: qasync keeps one registered for every
    handle until it fires, cancelled or not (aiohttp's request timeouts, wait_for deadlines), and one fired
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


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """The process's QApplication (created once), named and with the app icon."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName(APP_NAME)
    app.setWindowIcon(app_icon())
    # The main coroutine decides when to quit (after the async close handler); Qt quitting by itself
    # would stop the loop under a still-running coroutine.
    app.setQuitOnLastWindowClosed(False)
    return app


async def _start_builtin(window: MainWindow) -> BuiltinServer | None:
    """Start the built-in server off the GUI thread and hand it to the window; None if it cannot run."""
    from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable

    try:
        server = await asyncio.to_thread(BuiltinServer)
    except (BuiltinUnavailable, OSError, RuntimeError) as exc:
        log.warning("built-in voices unavailable: %s", exc)
        window.set_builtin_error(f"The built-in voices are not available: {exc}")
        return None
    if not window.is_closing():
        window.set_builtin(server)
        # Smoke checks (CI's fresh-root `make run`) wait for this line: the default voice can speak now.
        log.info("built-in voices ready")
    return server


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
    from voicegui.stream.fetch import warm_tls_context
    from voicegui.ui.main_window import MainWindow

    loop = asyncio.get_running_loop()
    window = MainWindow()
    _install_crash_dialog(window, loop)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    # Python runs signal handlers only between bytecodes; while Qt sits in C++ waiting for events a Ctrl+C
    # would wait for the next event. A cheap periodic timer gives the interpreter a chance to run it.
    heartbeat = QTimer()
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(200)
    window.show()
    builtin_task = asyncio.ensure_future(_start_builtin(window))
    # Built once per process (the CA store, ~19 ms): off the GUI thread now rather than in the first Speak.
    tls_task = asyncio.ensure_future(asyncio.to_thread(warm_tls_context))
    log.info("voicegui ready")
    try:
        await closed.wait()
    except asyncio.CancelledError:  # Ctrl+C: asyncio.Runner cancels this task; release the device first
        await window.shutdown()
        raise
    finally:
        heartbeat.stop()
        await tls_task
        # The server thread must not outlive the window; wait for a start still in progress, then stop it.
        server = await asyncio.shield(builtin_task)
        if server is not None:
            await asyncio.to_thread(server.stop)
    return 0


def run_window(argv: list[str] | None = None) -> int:
    """Show the main window and run until it is closed; returns the process exit code."""
    ensure_application(argv)
    with asyncio.Runner(loop_factory=AppLoop) as runner:
        try:
            return runner.run(_main_window_session())
        except KeyboardInterrupt:
            log.info("interrupted")
            return 130
