"""The window's single-instance server (ui/instance.py): a real QLocalServer on a real unix socket in a
private runtime directory, driven by the command line's plain client (voicegui.instance_protocol) from a
worker thread, as another process would; the window speaks through the test's built-in server to the
PulseAudio null sink.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
import tempfile
from pathlib import Path

import pytest

from tests.ui.conftest import until
from voicegui import instance_protocol as proto
from voicegui.instance_protocol import Reply, Request, WindowState
from voicegui.ui import instance

pytestmark = pytest.mark.audio


@pytest.fixture
def sock_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    # A short path of its own (a unix socket path holds ~107 bytes; pytest's tmp_path can be longer).
    d = Path(tempfile.mkdtemp(prefix="vg-inst-")) / "rt"
    monkeypatch.setenv(proto.RUNTIME_ENV, str(d))
    yield d / proto.SOCKET_NAME
    if d.exists():
        for p in d.iterdir():
            p.unlink()
        d.rmdir()
    d.parent.rmdir()


async def ask(request: Request, path: Path) -> Reply:
    """What a second process does: connect, send, read the reply (blocking, so in a worker thread)."""
    def run() -> Reply:
        state, sock = proto.connect(path)
        assert state is WindowState.RUNNING and sock is not None, state
        return proto.exchange(sock, request)
    return await asyncio.to_thread(run)


async def raw(data: bytes, path: Path) -> Reply:
    """Send raw bytes (a hostile or broken client) and read the reply."""
    def run() -> Reply:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(path))
            try:
                s.sendall(data)
            except BrokenPipeError:
                pass  # the window answered and closed before reading it all: the reply is still there
            header = s.recv(4, socket.MSG_WAITALL)
            body = s.recv(proto.body_length(header), socket.MSG_WAITALL)
            return proto.decode_reply(body)
    return await asyncio.to_thread(run)


async def test_speak_from_another_client_plays_in_the_window_and_lands_in_history(qtbot, window, sock_path):
    server = instance.claim_socket()
    instance.attach(server, window)
    try:
        window.text_edit.setPlainText("The user's own words.")
        reply = await ask(Request("speak", "Spoken from another process."), sock_path)
        assert reply.ok, reply.message
        await until(lambda: len(window.playbacks) == 1, 10, "the handed-off Speak to start")
        playback = window.playbacks[0]
        assert playback.kind == "speak"  # the window's own Speak path, with its voice
        assert playback.options.request.text == "Spoken from another process."
        assert playback.options.request.voice == window.provider_panel.voice_id()
        await asyncio.wait_for(playback.done.wait(), 15)
        assert playback.metrics is not None and playback.metrics.error is None
        assert playback.metrics.audio_played_s > 0
        await until(lambda: len(window.history.entries()) == 1, 10, "the history entry")
        assert window.history.entries()[0].text == "Spoken from another process."
        window.text_edit.undo()  # the user's text was replaced as one undoable edit
        assert window.text_edit.toPlainText() == "The user's own words."
    finally:
        server.close()
    assert not sock_path.exists()


async def test_stop_from_another_client_stops_the_window(qtbot, window, server, sock_path):
    from voicegui.server.shaping import Shaping

    server.shaping = Shaping(throughput_x=1.0)  # real time: it still plays when stop comes
    commands = instance.claim_socket()
    instance.attach(commands, window)
    try:
        assert (await ask(Request("stop"), sock_path)).message == "nothing is playing"
        assert (await ask(Request("speak", "A long sentence that will be stopped."), sock_path)).ok
        await until(lambda: window.playbacks and window.playbacks[0].metrics is None
                    and window.player.is_busy(), 10, "the Speak to start")
        reply = await ask(Request("stop"), sock_path)
        assert reply.ok and reply.message == "stopped"
        playback = window.playbacks[0]
        await asyncio.wait_for(playback.done.wait(), 10)
        assert not window.player.is_busy()
        assert playback.superseded
    finally:
        commands.close()


async def test_hostile_messages_get_an_error_reply_and_the_server_keeps_serving(qtbot, window, sock_path):
    server = instance.claim_socket()
    instance.attach(server, window)
    try:
        too_big = await raw(struct.pack(">I", proto.MAX_MESSAGE_BYTES + 1) + b"{}", sock_path)
        assert not too_big.ok and "over the limit" in too_big.message
        not_json = await raw(struct.pack(">I", 5) + b"\xff{{{x", sock_path)
        assert not not_json.ok and "not UTF-8 JSON" in not_json.message
        other_version = await raw(proto.encode({"v": 99, "op": "stop"}), sock_path)
        assert not other_version.ok and "version 99" in other_version.message
        unknown = await raw(proto.encode({"v": 1, "op": "rm -rf"}), sock_path)
        assert not unknown.ok and "unknown request" in unknown.message
        empty = await ask(Request("speak", "   "), sock_path)
        assert not empty.ok and "nothing to speak" in empty.message
        assert window.playbacks == []
        # still serving, and nothing was played by any of it
        assert (await ask(Request("show"), sock_path)).ok
    finally:
        server.close()


async def test_a_client_that_never_finishes_is_dropped_and_others_are_served(qtbot, window, sock_path):
    server = instance.claim_socket()
    instance.attach(server, window)
    try:
        stuck = asyncio.ensure_future(raw(struct.pack(">I", 100) + b'{"v": 1', sock_path))  # then silence
        await asyncio.sleep(0.2)
        assert (await ask(Request("show"), sock_path)).ok  # not blocked by the stuck one
        reply = await asyncio.wait_for(stuck, 30)
        assert not reply.ok and "no complete request arrived in time" in reply.message
    finally:
        server.close()


async def test_socket_is_private_and_another_uid_is_refused(qtbot, window, sock_path):
    server = instance.claim_socket()
    instance.attach(server, window)
    try:
        assert stat.S_IMODE(os.stat(sock_path.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600
        assert os.stat(sock_path).st_uid == os.getuid()
    finally:
        server.close()
    # The same server code, told that this window belongs to another user: this process's real peer
    # credentials (SO_PEERCRED) no longer match, so it is refused and nothing plays.
    other = instance.InstanceServer(instance.WindowCommands(window), sock_path, uid=os.getuid() + 1)
    other.listen()
    try:
        reply = await raw(proto.encode_request(Request("speak", "Not from this user.")), sock_path)
        assert not reply.ok and f"user id {os.getuid()}" in reply.message
        assert window.playbacks == []
    finally:
        other.close()


async def test_a_stale_socket_is_taken_over_and_a_live_one_is_not(qtbot, window, sock_path):
    proto.ensure_runtime_dir(sock_path.parent)
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(sock_path))  # bound, never listening: what a killed window leaves behind
    crashed.close()
    assert proto.window_state(sock_path) is WindowState.STALE
    server = instance.claim_socket()
    instance.attach(server, window)
    try:
        assert server.is_listening() and server.took_over_stale
        assert (await ask(Request("show"), sock_path)).ok
        with pytest.raises(instance.AlreadyRunning):  # a second window raises this one instead
            instance.claim_socket()
        assert server.is_listening()
    finally:
        server.close()


async def test_speak_clipboard_and_selection(qtbot, window, sock_path):
    from PySide6.QtGui import QClipboard, QGuiApplication

    server = instance.claim_socket()
    instance.attach(server, window)
    clipboard = QGuiApplication.clipboard()
    try:
        clipboard.setText("", QClipboard.Mode.Clipboard)
        empty = await ask(Request("speak-clipboard"), sock_path)
        assert not empty.ok and "the clipboard holds no text" in empty.message
        clipboard.setText("Words from the clipboard.", QClipboard.Mode.Clipboard)
        assert (await ask(Request("speak-clipboard"), sock_path)).ok
        await until(lambda: len(window.playbacks) == 1, 10, "the clipboard Speak")
        assert window.playbacks[0].options.request.text == "Words from the clipboard."
        await asyncio.wait_for(window.playbacks[0].done.wait(), 15)
        reply = await ask(Request("speak-selection"), sock_path)
        if clipboard.supportsSelection():
            assert not reply.ok or len(window.playbacks) == 2
        else:  # the offscreen platform, like Wayland, has no primary selection: said, not ignored
            assert not reply.ok and "no primary selection" in reply.message
    finally:
        server.close()


# --- the tray (ui/tray.py); built directly: the offscreen platform has no system tray to show it in ------
async def test_tray_speaks_the_clipboard_stops_and_closes_to_tray(qtbot, window, server):
    from PySide6.QtGui import QClipboard, QGuiApplication, QIcon
    from PySide6.QtWidgets import QSystemTrayIcon

    from voicegui.server.shaping import Shaping
    from voicegui.ui.tray import Tray, install_tray

    commands = instance.WindowCommands(window)
    if not QSystemTrayIcon.isSystemTrayAvailable():
        assert install_tray(window, commands, QIcon()) is None  # no tray: nothing changes
    tray = Tray(window, commands, QIcon())
    server.shaping = Shaping(throughput_x=1.0)  # real time: it still plays when Stop comes
    QGuiApplication.clipboard().setText("Words for the tray.", QClipboard.Mode.Clipboard)
    tray.speak_clipboard.trigger()
    await until(lambda: window.player.is_busy() and len(window.playbacks) == 1, 10, "the tray's Speak")
    assert window.playbacks[0].options.request.text == "Words for the tray."
    tray.stop.trigger()
    await asyncio.wait_for(window.playbacks[0].done.wait(), 10)
    assert window.playbacks[0].superseded

    assert not tray.close_to_tray.isChecked()  # off by default
    tray.close_to_tray.setChecked(True)
    assert window.current_state().close_to_tray  # saved in window.json at close, restored at the next start
    assert Tray(window, commands, QIcon()).close_to_tray.isChecked()
    assert not window.close()  # hidden instead of closed
    assert not window.isVisible() and not window.is_closing()
    tray.toggle_window()
    assert window.isVisible()
    tray.close_to_tray.setChecked(False)


async def test_tray_notifies_errors_while_the_window_is_hidden(qtbot, window, server):
    from PySide6.QtGui import QIcon

    from voicegui.server.shaping import Shaping
    from voicegui.ui.tray import Tray

    tray = Tray(window, instance.WindowCommands(window), QIcon())
    server.shaping = Shaping(error_status=500)
    tray.toggle_window()
    assert not window.isVisible()
    reply = tray.commands.speak("This will fail.", "the text")
    assert reply.ok
    await until(lambda: window.playbacks and window.playbacks[0].done.is_set(), 15, "the failed Speak")
    assert tray.last_notice is not None and "500" in tray.last_notice
    # Visible again: the banner says it, no notification.
    tray.last_notice = None
    tray.toggle_window()
    assert tray.commands.speak("This fails too.", "the text").ok
    await until(lambda: len(window.playbacks) == 2 and window.playbacks[1].done.is_set(), 15, "the second Speak")
    assert tray.last_notice is None
