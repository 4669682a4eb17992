"""ServerThread: the speech server on its own asyncio loop in a daemon thread, on 127.0.0.1:free port.

Used by tests, benchmarks and the window (which keeps its own qasync loop free of server work).

Threads: the server thread owns its loop, the aiohttp runner and every request handler. Other threads may
read `records` (a list the loop appends to; read it after the request ended, or copy it) and replace
`shaping` (a plain attribute swap, read by the loop once per request). `stop()` asks the loop to shut down
and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType

from voicegui.aiohttp_import import web
from voicegui.server.app import READ_TIMEOUT_S, RequestRecord, create_app, server_options, set_shaping
from voicegui.server.engines.base import Engine
from voicegui.server.shaping import Shaping

log = logging.getLogger(__name__)


class ServerThread:
    """Run create_app(engine, shaping, token) on 127.0.0.1 in a daemon thread. Starts on construction."""

    def __init__(self, engine: Engine, shaping: Shaping | None = None, token: str | None = None,
                 host: str = "127.0.0.1", port: int = 0, start_timeout_s: float = 10.0,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.app = create_app(engine, shaping, token, read_timeout_s=read_timeout_s)
        self.read_timeout_s = read_timeout_s  # how long a client may take to send a request's head, and its body
        self._host = host
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        # Bind here, on the caller's thread, so the port is known (and a bind error raised) before we return.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"voicegui-server-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout_s):
            raise RuntimeError("speech server thread did not start")
        if self._error is not None:
            raise RuntimeError(f"speech server failed to start: {self._error}") from self._error

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    @property
    def token(self) -> str | None:
        """The bearer token the server requires (None: any key is accepted)."""
        return self.app["token"]

    @property
    def native_id(self) -> int | None:
        """The server thread's OS thread id (for per-thread CPU accounting in benchmarks)."""
        return self._thread.native_id

    @property
    def records(self) -> list[RequestRecord]:
        return self.app["records"]

    @property
    def shaping(self) -> Shaping:
        return self.app["shaping"]

    @shaping.setter
    def shaping(self, value: Shaping | None) -> None:
        set_shaping(self.app, value)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except Exception as exc:  # reported to the constructor, which raises it on the caller's thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            try:
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            finally:
                self._loop.close()
                self._stopped.set()

    async def _start(self) -> None:
        # server_options: handler cancellation and the header read timeout (see app.server_options).
        # shutdown_timeout: stop() should not wait a minute for a slow paced stream to end.
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5, **server_options(self.read_timeout_s))
        await self._runner.setup()
        site = web.SockSite(self._runner, self._sock)
        await site.start()
        log.debug("speech server ready on %s", self.base_url)

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving (open streams are cut) and join the thread. Safe to call twice."""
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            fut.result(timeout_s)
        except TimeoutError:
            log.warning("speech server did not shut down within %.1f s", timeout_s)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
