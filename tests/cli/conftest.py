"""Shared by the command line's tests: a private runtime directory for the hand-off socket, and a listening
"window" there (a real AF_UNIX server in a thread speaking voicegui.instance_protocol and recording what it
got), for the hand-off tests (test_handoff.py) and what a handed-over command imports (test_startup.py).
"""

from __future__ import annotations

import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicegui import instance_protocol as proto
from voicegui.instance_protocol import Reply, Request


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vg-cli-"))
    monkeypatch.setenv(proto.RUNTIME_ENV, str(d))
    yield d
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


SPEAKING = Reply(True, "speaking the text in the voicegui window")


class FakeWindow:
    """A listening socket that answers each request with `reply` and keeps what it was asked."""

    def __init__(self, path: Path, reply: Reply = SPEAKING) -> None:
        self.requests: list[Request] = []
        self.reply = reply
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                header = conn.recv(4, socket.MSG_WAITALL)
                if len(header) < 4:
                    continue  # a connect-only probe
                body = conn.recv(proto.body_length(header), socket.MSG_WAITALL)
                self.requests.append(proto.decode_request(body))
                conn.sendall(proto.encode_reply(self.reply))

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def window(runtime: Path) -> Iterator[FakeWindow]:
    w = FakeWindow(runtime / proto.SOCKET_NAME)
    yield w
    w.close()


