"""The window's event loop (ui/event_loop.py KeptNotifierLoop, under ui/app.AppLoop): reading that stops and
starts again (asyncio's flow control) keeps one Qt socket notifier per descriptor, and reads, pauses and
resumes exactly as asyncio's own loop does. The tests run on AppLoop (tests/ui/conftest.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from voicegui.ui.app import AppLoop

BODY = bytes(range(256)) * 2048  # 512 KiB
LIMIT = 1024  # the client's stream buffer: the transport pauses at twice this and resumes as it is read


async def test_a_stream_read_in_small_pieces_pauses_and_resumes_on_one_notifier() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, AppLoop)

    async def body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = len(BODY)  # not chunked: the body comes as it is
        await response.prepare(request)
        await response.write(BODY)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/", body)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    made = loop.notifiers_made
    pauses = 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=LIMIT)
        writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        received = bytearray()
        while chunk := await reader.read(LIMIT // 2):
            received += chunk
            pauses += reader._paused  # type: ignore[attr-defined]  # asyncio's flag: the transport stopped reading
        writer.close()
        await writer.wait_closed()
    finally:
        await runner.cleanup()
    assert received.endswith(BODY)  # every byte, in order, after the headers
    assert pauses > 20, "the test did not make the transport pause and resume"
    # one read and at most one write notifier per socket (the client's and the server's end) for all the pauses
    # and resumes; qasync made a new one at each resume
    assert loop.notifiers_made - made <= 4 < pauses


async def test_a_reader_removed_in_its_callback_stops_and_a_replaced_one_calls_only_the_new_callback() -> None:
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    calls: list[str] = []
    got_old, got_new = asyncio.Event(), asyncio.Event()

    def old() -> None:
        calls.append("old")
        left.recv(1)
        loop.remove_reader(left)  # as pause_reading does, from inside the callback
        got_old.set()

    def new() -> None:
        calls.append("new")
        left.recv(1)
        got_new.set()

    try:
        loop.add_reader(left, old)
        right.send(b"a")
        await asyncio.wait_for(got_old.wait(), 5)
        right.send(b"b")
        await asyncio.sleep(0.05)  # removed: nothing is called though there is a byte to read
        assert calls == ["old"]
        loop.add_reader(left, old)
        loop.add_reader(left, new)  # replaces it
        await asyncio.wait_for(got_new.wait(), 5)
        assert calls == ["old", "new"]
        assert loop.remove_reader(left) is True
        assert loop.remove_reader(left) is False  # not watched any more
    finally:
        loop.remove_reader(left)
        left.close()
        right.close()


def test_a_loop_closes_with_readers_still_registered() -> None:
    loop = AppLoop()
    left, right = socket.socketpair()
    try:
        loop.add_reader(left, lambda: None)
        loop.add_writer(right, lambda: None)
        loop.close()
        assert loop.is_closed()
    finally:
        left.close()
        right.close()


async def test_callbacks_run_in_order_and_debug_mode_still_refuses_a_coroutine_function() -> None:
    loop = asyncio.get_running_loop()
    ran: list[int] = []
    done = asyncio.Event()
    for i in range(5):
        loop.call_soon(ran.append, i)
    loop.call_later(0.01, done.set)
    await asyncio.wait_for(done.wait(), 5)
    assert ran == [0, 1, 2, 3, 4]

    async def coroutine_function() -> None:
        return None

    loop.set_debug(True)
    try:
        with pytest.raises(TypeError):
            loop.call_soon(coroutine_function)
    finally:
        loop.set_debug(False)


def test_a_step_queued_as_the_loop_stops_runs_with_the_loop_as_the_running_one(qapp) -> None:
    """qasync processes Qt's pending events once more after run_until_complete's loop has stopped. A task step
    still queued then (here: woken by a done-callback of the main coroutine, which runs after the loop's own
    stop) must run as on the loop: asyncio.get_running_loop() works, as asyncio's HTTP clients need (they
    failed there with "no running event loop")."""
    loop = AppLoop()
    seen: list[object] = []
    try:
        woken = loop.create_future()

        async def waiting() -> None:
            await woken
            try:
                seen.append(asyncio.get_running_loop())
            except RuntimeError as exc:
                seen.append(exc)

        async def main() -> None:
            loop.create_task(waiting())
            await asyncio.sleep(0)  # waiting() now waits for `woken`
            current = asyncio.current_task()
            assert current is not None
            # After run_until_complete's own done-callback, which stops the loop.
            current.add_done_callback(lambda _task: woken.set_result(None))

        loop.run_until_complete(main())
        assert len(seen) == 1 and seen[0] is loop, seen
    finally:
        loop.close()
