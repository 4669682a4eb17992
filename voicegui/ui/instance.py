"""The running window's end of the single-instance hand-off: a QLocalServer that takes one request per
connection from a second `voicegui` (speak a text, the selection or the clipboard, stop, show the window)
and answers at once; the window does the work through the same path as its own Speak and Stop buttons.

Threads: GUI thread only (QLocalServer and its sockets live there; the handler is called there, so it may
touch widgets and schedule the window's async slots on the qasync loop). Reading another program's X11
selection or clipboard blocks it: at most OWNER_ANSWER_S while that program is silent (ui/x11_selection).

Safety: the socket's directory is 0700 and the socket itself 0600 (QLocalServer.UserAccessOption, then chmod), and each
connection's peer uid (SO_PEERCRED) must be this process's, else it gets a refusal and is closed. Messages
are bounded (instance_protocol.MAX_MESSAGE_BYTES); a huge, malformed or unknown one gets an error reply,
never an exception; a client that sends nothing is dropped after CLIENT_IDLE_MS, and at most MAX_CLIENTS
connections are served at once.

A socket file left by a crashed window (connect refused) is removed and taken over; a live one means another
window runs, and `listen()` says so (the app then raises that one instead of starting a second).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QClipboard, QGuiApplication
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from voicegui import instance_protocol as proto
from voicegui.instance_protocol import ProtocolError, Reply, Request, WindowState
from voicegui.ui import x11_selection

log = logging.getLogger(__name__)

CLIENT_IDLE_MS = 5000
MAX_CLIENTS = 8
# How long another program holding the selection may take to answer is x11_selection.OWNER_ANSWER_S: the GUI
# thread waits that long, and the command's own timeout (instance_protocol) is longer.
Handler = Callable[[Request], Reply]


class AlreadyRunning(Exception):
    """Another live window listens on the socket."""


class InstanceServer(QObject):
    """Listens on `path` (default: instance_protocol.socket_path()) and hands each request to `handler`."""

    def __init__(self, handler: Handler, path: Path | None = None, uid: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.handler = handler
        self.path = path or proto.socket_path()
        self._uid = os.getuid() if uid is None else uid  # the peer uid accepted (tests pass another)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.setMaxPendingConnections(MAX_CLIENTS)
        self._server.newConnection.connect(self._on_new_connection)
        self._buffers: dict[QLocalSocket, bytearray] = {}
        self.took_over_stale = False
        self.problem: str | None = None

    def listen(self) -> None:
        """Claim the socket. A stale one (its window crashed) is removed first; AlreadyRunning if a window
        answers on it; OSError with a sentence if the socket cannot be made."""
        proto.ensure_runtime_dir(self.path.parent)
        state = proto.window_state(self.path)
        if state is WindowState.RUNNING:
            raise AlreadyRunning(str(self.path))
        if state is WindowState.STALE:
            log.info("removing the stale socket %s left by a voicegui that did not exit cleanly", self.path)
            QLocalServer.removeServer(str(self.path))
            self.took_over_stale = True
        if not self._server.listen(str(self.path)):
            raise OSError(f"cannot listen on {self.path}: {self._server.errorString()}; another voicegui "
                          f"cannot hand its requests to this window (set ${proto.RUNTIME_ENV} to another "
                          "directory)")
        # UserAccessOption makes it 0700 (created in a private temp dir, then moved here); a socket needs
        # no execute bit: 0600.
        os.chmod(self.path, 0o600)
        log.info("listening for other voicegui commands on %s", self.path)

    def close(self) -> None:
        """Stop listening and remove the socket file (the next window starts cleanly)."""
        for sock in list(self._buffers):
            sock.abort()
        self._buffers.clear()
        if self._server.isListening():
            self._server.close()  # QLocalServer removes its socket file on close

    def is_listening(self) -> bool:
        return self._server.isListening()

    def _on_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            sock = self._server.nextPendingConnection()
            if len(self._buffers) >= MAX_CLIENTS:
                self._reply(sock, Reply(False, "busy: too many voicegui commands at once; try again"))
                continue
            try:
                problem = proto.peer_problem(proto.peer_credentials(int(sock.socketDescriptor())), self._uid)
            except OSError as exc:
                problem = f"refused: the connecting process's user cannot be checked ({exc})"
            if problem is not None:
                log.warning("voicegui command socket: %s", problem)
                self._reply(sock, Reply(False, problem))
                continue
            self._buffers[sock] = bytearray()
            sock.readyRead.connect(lambda s=sock: self._on_ready_read(s))
            sock.disconnected.connect(lambda s=sock: self._forget(s))
            QTimer.singleShot(CLIENT_IDLE_MS, sock, lambda s=sock: self._on_idle(s))

    def _forget(self, sock: QLocalSocket) -> None:
        self._buffers.pop(sock, None)
        sock.deleteLater()

    def _on_idle(self, sock: QLocalSocket) -> None:
        if sock in self._buffers:
            self._reply(sock, Reply(False, "no complete request arrived in time"))

    def _on_ready_read(self, sock: QLocalSocket) -> None:
        buf = self._buffers.get(sock)
        if buf is None:
            return
        buf += bytes(sock.read(proto.HEADER.size + proto.MAX_MESSAGE_BYTES + 1 - len(buf)).data())
        if len(buf) < proto.HEADER.size:
            return
        try:
            length = proto.body_length(bytes(buf[:proto.HEADER.size]))
            if len(buf) < proto.HEADER.size + length:
                return
            request = proto.decode_request(bytes(buf[proto.HEADER.size:proto.HEADER.size + length]))
        except ProtocolError as exc:
            log.warning("voicegui command socket: bad request: %s", exc)
            self._reply(sock, Reply(False, f"bad request: {exc}"))
            return
        self._reply(sock, self.handler(request))

    def _reply(self, sock: QLocalSocket, reply: Reply) -> None:
        self._buffers.pop(sock, None)
        sock.write(proto.encode_reply(reply))
        sock.flush()
        sock.disconnected.connect(sock.deleteLater)  # refused sockets were never given this
        sock.disconnectFromServer()  # after the reply is written
        if sock.state() == QLocalSocket.LocalSocketState.UnconnectedState:
            sock.deleteLater()


def claim_socket(path: Path | None = None) -> InstanceServer:
    """The window's server, listening before the window is built (so two windows started together cannot
    both run). AlreadyRunning after asking the live window to show itself; a socket that cannot be made
    leaves the server not listening, with `problem` saying why (the window works without it)."""
    server = InstanceServer(lambda _r: Reply(False, "the voicegui window is starting; try again in a moment"),
                            path)
    try:
        server.listen()
    except AlreadyRunning:
        log.info("a voicegui window already runs: raising it instead of opening a second one")
        state, sock = proto.connect(server.path)
        if sock is not None:
            try:
                proto.exchange(sock, Request("show"))
            except (OSError, ProtocolError) as exc:
                log.warning("the running voicegui window did not answer: %s", exc)
        raise
    except OSError as exc:
        log.warning("single-instance socket unavailable: %s", exc)
        server.problem = f"Other voicegui commands cannot reach this window: {exc}"
    return server


def attach(server: InstanceServer, window: Any) -> WindowCommands:
    """From now on requests go to `window` (its Speak and Stop); a socket problem is shown in its banner."""
    commands = WindowCommands(window)
    server.handler = commands
    if server.problem:
        window.show_error(server.problem)
    return commands


class WindowCommands:
    """What a request does to the window: the same slots as its Speak and Stop buttons.

    `window` is the MainWindow (typed loosely: ui/main_window.py is edited by others and imports nothing of
    this module). A text to speak replaces the text box's content as one undoable edit (Ctrl+Z brings the
    user's text back), so History and the window show what was spoken.
    """

    def __init__(self, window: Any) -> None:
        self.window = window
        self._handed: str | None = None  # the text last handed over, until its Speak has finished
        self._received: float | None = None  # monotonic time that request was read (the benchmark's stamp)
        window.player.on_finished(self._on_finished)
        window.player.on_started(self._on_started)

    def _is_handed(self, playback: Any) -> bool:
        return (self._handed is not None and playback.kind == "speak"
                and self._handed.startswith(playback.options.request.text))

    def _on_started(self, playback: Any) -> None:
        if self._is_handed(playback):
            log.info("handed-over Speak started")

    def _on_finished(self, playback: Any) -> None:
        # The benchmark hook (tests/e2e/handoff_bench.py): the command's launch and this mark share the
        # system's monotonic clock, so launch-to-first-sound is measured across the two processes.
        if not self._is_handed(playback):
            return
        self._handed = None
        marks = playback.metrics.marks if playback.metrics is not None else None
        if marks is not None and marks.first_sound is not None:
            # Then each stage in ms after the request was read, for the benchmark's breakdown.
            stages = {"started": marks.started, "request_sent": marks.request_sent, "first_byte": marks.first_byte,
                      "play_started": marks.play_started, "first_sound": marks.first_sound}
            received = self._received if self._received is not None else marks.started
            log.info("handed-over Speak finished: first sound at monotonic %.6f, device latency %.6f s; "
                     "received at monotonic %.6f; %s", marks.first_sound, marks.device_latency_s or 0.0, received,
                     " ".join(f"{k}=+{(v - received) * 1000:.1f}ms" for k, v in stages.items() if v is not None))
        else:
            log.info("handed-over Speak finished without sound")

    def __call__(self, request: Request) -> Reply:
        w = self.window
        if w.is_closing():
            return Reply(False, "the voicegui window is closing; run the command again in a moment")
        if request.op == "show":
            self.show_window()
            return Reply(True, "the voicegui window is shown")
        if request.op == "stop":
            busy = w.player.is_busy() or w.is_queued()
            w.stop()
            return Reply(True, "stopped" if busy else "nothing is playing")
        if request.op == "speak":
            return self.speak(request.text, "the text")
        mode = QClipboard.Mode.Selection if request.op == "speak-selection" else QClipboard.Mode.Clipboard
        return self.speak_clipboard(mode)

    def show_window(self) -> None:
        w = self.window
        if w.isMinimized():
            w.showNormal()
        w.show()
        w.raise_()
        w.activateWindow()

    def speak_clipboard(self, mode: QClipboard.Mode) -> Reply:
        clipboard = QGuiApplication.clipboard()
        if mode is QClipboard.Mode.Selection and not clipboard.supportsSelection():
            return Reply(False, "this desktop has no primary selection (Wayland or no X11); select and copy "
                                "the text, then use `voicegui speak --clipboard`")
        what = "the selection" if mode is QClipboard.Mode.Selection else "the clipboard"
        problem = owner_problem(clipboard, mode, what)
        if problem is not None:
            return Reply(False, problem)
        return self.speak(clipboard.text(mode), what)

    def speak(self, text: str, what: str) -> Reply:
        problem = x11_selection.text_problem(text, what)
        if problem is not None:
            return Reply(False, problem)
        w = self.window
        self._received = time.monotonic()
        cursor = w.text_edit.textCursor()
        cursor.select(cursor.SelectionType.Document)
        cursor.insertText(text)  # one edit on the undo stack: the user's text is a Ctrl+Z away
        self._handed = text
        w.speak()
        return Reply(True, f"speaking {what} in the voicegui window")


def owner_problem(clipboard: QClipboard, mode: QClipboard.Mode, what: str) -> str | None:
    """Why `what` cannot be read now: on X11, another program holds it and does not answer (Qt would wait for
    it up to 15 s on the GUI thread); None when it can be read."""
    selection = mode is QClipboard.Mode.Selection
    owned = clipboard.ownsSelection() if selection else clipboard.ownsClipboard()
    if QGuiApplication.platformName() != "xcb" or owned:
        return None  # Qt hands over its own without asking X (and this thread could not answer the probe)
    try:
        owner = x11_selection.probe("PRIMARY" if selection else "CLIPBOARD", x11_selection.OWNER_ANSWER_S)
    except x11_selection.X11Error as exc:
        log.warning("cannot ask the X server whether the program holding %s answers (%s); reading it through Qt, "
                    "which waits for that program", what, exc)
        return None
    if owner is not x11_selection.Owner.SILENT:
        return None
    log.warning("the program that holds %s did not answer within %g s", what, x11_selection.OWNER_ANSWER_S)
    return x11_selection.silent_owner(what, selection)
