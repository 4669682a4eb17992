"""Two aiohttp servers on 127.0.0.1, each on its own event loop in a daemon thread (the test itself blocks in
`subprocess.run` while `voicegui speak` talks to them):

- `FileServer`: POST /<case>/v1/audio/speech answers with the bytes registered for <case>, in 4 KiB writes,
  so a real-encoder file reaches voicegui as a server's response body.
- `RecordingProxy`: forwards POST /v1/audio/speech to a third-party server and streams its answer back
  unchanged while keeping a copy, so the reference decode sees exactly the bytes voicegui played (a neural
  voice does not say the same thing twice).
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

WRITE_BYTES = 4096
# Headers a server uses to describe its audio; the rest (lengths, encodings) aiohttp sets itself.
PASSED_HEADERS = ("Content-Type", "X-Sample-Rate", "X-Channels", "X-Sample-Width")


class _ThreadedApp:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def _app(self) -> web.Application:
        raise NotImplementedError

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app(), handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


class FileServer(_ThreadedApp):
    """Serves `files[case] = (body, content_type)` as the speech response of base URL `url(case)`."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, tuple[bytes, str]] = {}

    def url(self, case: str) -> str:
        return f"http://127.0.0.1:{self.port}/{case}/v1"

    def _app(self) -> web.Application:
        async def speech(request: web.Request) -> web.StreamResponse:
            await request.read()
            body, content_type = self.files[request.match_info["case"]]
            resp = web.StreamResponse(headers={"Content-Type": content_type})
            await resp.prepare(request)
            for start in range(0, len(body), WRITE_BYTES):
                await resp.write(body[start : start + WRITE_BYTES])
            await resp.write_eof()
            return resp

        app = web.Application()
        app.router.add_post("/{case}/v1/audio/speech", speech)
        return app


class RecordingProxy(_ThreadedApp):
    """POST <url>/audio/speech -> `upstream`/audio/speech; `bodies` gets each answer's bytes, `headers` its
    headers (both in request order)."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.bodies: list[bytes] = []
        self.statuses: list[int] = []
        self.headers: list[CIMultiDict[str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _app(self) -> web.Application:
        async def speech(request: web.Request) -> web.StreamResponse:
            payload = await request.read()
            forward = {k: v for k, v in request.headers.items() if k in ("Authorization", "Content-Type")}
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
                f"{self.upstream}/audio/speech", data=payload, headers=forward
            ) as upstream:
                headers = {k: upstream.headers[k] for k in PASSED_HEADERS if k in upstream.headers}
                resp = web.StreamResponse(status=upstream.status, headers=headers)
                await resp.prepare(request)
                kept = bytearray()
                async for chunk in upstream.content.iter_any():
                    kept += chunk
                    await resp.write(chunk)
                await resp.write_eof()
            self.statuses.append(upstream.status)
            self.headers.append(CIMultiDict(upstream.headers))
            self.bodies.append(bytes(kept))
            return resp

        app = web.Application()
        app.router.add_post("/v1/audio/speech", speech)
        return app
