"""Closing the window while the provider panel still waits for a server, and a test that ends then.

The server is a real socket on 127.0.0.1 that takes the connection and the request and answers only when the
test says so. A listing cancelled by the closing window must have ended when the window's shutdown returns,
on the loop; otherwise qasync (which processes Qt's pending events once more after its loop stopped) or
pytest-qt (which processes them after every test, and fails the test on any exception raised there) resumes
it outside the loop, where the HTTP client fails with "no running event loop"."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.ui.conftest import until

MODELS = json.dumps({"object": "list", "data": [{"id": "tts-1", "object": "model"}]}).encode()


class SilentServer:
    """Listens on 127.0.0.1; reads what arrives; sends only what the test asks it to."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.conns: list[socket.socket] = []
        self.received = bytearray()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def request_arrived(self) -> bool:
        try:
            conn, _ = self.sock.accept()
            conn.setblocking(False)
            self.conns.append(conn)
        except BlockingIOError:
            pass
        for conn in self.conns:
            try:
                self.received.extend(conn.recv(65536))
            except BlockingIOError:
                pass
        return b"\r\n\r\n" in self.received

    def answer(self, body: bytes) -> None:
        self.conns[-1].sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


async def start_listing(window, silent: SilentServer) -> list:
    pp = window.provider_panel
    pp.set_provider("custom")
    window.base_url.setText(silent.base_url)
    pp._on_base_url_edited()  # as editingFinished does
    await until(silent.request_arrived, 10, "the listing's request at the silent server")
    waiting = [task for task in pp._in_flight if not task.done()]
    assert waiting, "the listing should still be waiting for the answer"
    return waiting


async def test_a_listing_cancelled_by_the_closing_panel_has_ended_once_wait_closed_returns(window, silent):
    waiting = await start_listing(window, silent)
    window.provider_panel.close_panel()
    assert not any(task.done() for task in waiting)  # a cancel is a request: the task has not run yet
    await window.provider_panel.wait_closed()
    assert all(task.cancelled() for task in waiting)


async def test_the_windows_shutdown_ends_its_listings_before_it_returns(window, silent):
    waiting = await start_listing(window, silent)
    await window.shutdown()
    assert all(task.cancelled() for task in waiting)


async def test_a_test_that_ends_as_its_listing_is_answered_passes(window, silent):
    """The answer is in the socket when the test returns: the loop has not seen it yet, qasync's last pass
    over Qt's events does, and runs it as on the loop (ui/event_loop.py)."""
    await start_listing(window, silent)
    silent.answer(MODELS)
    time.sleep(0.2)  # the bytes reach the client's socket; blocking, so the loop does not read them here
