"""BuiltinServer: the offline voices as an OpenAI-compatible provider on 127.0.0.1, for this process only.

`voicegui speak` without --base-url and the window's "Built-in" provider both talk to the offline engines
(hibari "heart", espeak-ng, piper) the same way they talk to any server: over HTTP, through the one data
path (fetch -> decode -> ring -> output). BuiltinServer starts that server on a free loopback port with a
random per-run bearer token, so other local users/processes that find the port cannot use it, and says which
model and voice to ask for by default ("builtin" / "heart", or the first voice there is if hibari is missing).

Why a thread in this process rather than a child `voicegui serve` process:
- start-up cost: a child would import numpy/av/onnxruntime and load the models again (~1-2 s) before the
  first Speak; here they load once, in the process that already imports most of them;
- one monotonic clock: the server's RequestRecords (request received, first byte written) are
  time.monotonic() values comparable with the client's TTFA marks, so metrics can split server time from
  network and client time without clock translation;
- no orphans: a crashed or killed window cannot leave a server process holding a port;
- it does not compete with the audio path: the server's loop only encodes and writes; the engines do their
  heavy work (ONNX inference, espeak-ng) in their own worker threads, mostly outside the GIL.

Threads: the caller's thread constructs (it imports the server's library, aiohttp, and loads the engines that
are not lazy, which blocks ~0.3-1 s) and stops it; importing this module loads neither. PyAV is imported by the
first response in a compressed format (encode.py, on the server loop) or by the first sentence of a voice
that is resampled (espeak-ng, piper: engines/audio.py, on its worker). The server runs on ServerThread's own
asyncio loop in a daemon thread; each engine owns its worker thread(s). `shaping` may be replaced from any
thread (a plain attribute swap read once per request); `records` are appended by the server loop (read them
after a request ended). Qt-free.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from voicegui.server.engines.base import Engine, VoiceInfo
from voicegui.server.engines.builtin import BUILTIN_MODEL, BuiltinEngine, available_engines
from voicegui.server.shaping import Shaping

if TYPE_CHECKING:
    from voicegui.server.app import RequestRecord

log = logging.getLogger(__name__)

DEFAULT_MODEL = BUILTIN_MODEL
DEFAULT_VOICE = "heart"


class BuiltinUnavailable(RuntimeError):
    """No offline engine works on this machine; the message carries the install hints."""


def default_voice(voices: list[VoiceInfo]) -> str:
    """"heart" if offered (the best offline voice), else the first voice (engines list best first)."""
    ids = [v.id for v in voices]
    if DEFAULT_VOICE in ids:
        return DEFAULT_VOICE
    if not ids:
        raise BuiltinUnavailable("the built-in engines offer no voice")
    return ids[0]


class BuiltinServer:
    """The built-in speech server for this process. Starts on construction; `stop()` (or `with`) ends it.

    `engines`: the engines to serve (default: every one `available_engines()` finds; they are then owned
    and closed by this object). Raises BuiltinUnavailable if there is none, OSError/RuntimeError if the
    server cannot start.
    """

    def __init__(self, engines: list[Engine] | None = None, shaping: Shaping | None = None,
                 warm: bool = True, lazy: bool = False,
                 before_start: Callable[[BuiltinEngine, str], object] | None = None) -> None:
        """`before_start(engine, default_voice)` is called once the engines exist, before the server's own
        imports (aiohttp, PyAV: ~0.25 s) and its start: `voicegui speak` starts loading its voice's model there,
        so the two overlap."""
        hints: list[str] = []
        if engines is None:
            # lazy: neural engines load on their first request (the CLI speaks one voice: why load all?)
            engines, hints = available_engines(warm=warm, lazy=lazy)
        self.hints: list[str] = hints  # why some engines are missing ("espeak-ng not found: apt-get ...")
        if not engines:
            raise BuiltinUnavailable("no offline voice is available: " + ("; ".join(hints) or "no engine found"))
        self.engine = BuiltinEngine(engines)
        try:
            # Imported here, not with this module: the window imports this module on its GUI thread (for
            # BuiltinUnavailable), and the server's aiohttp (~0.2 s) belongs on the thread that starts it.
            from voicegui.server.thread import ServerThread

            self.default_voice: str = default_voice(self.engine.voices())
            if before_start is not None:
                before_start(self.engine, self.default_voice)
            # A fresh token per run: the port is reachable by every local user, the token only by us.
            self._server = ServerThread(self.engine, shaping=shaping, token=secrets.token_urlsafe(24))
        except BaseException:
            self.engine.close()
            raise
        self.default_model: str = DEFAULT_MODEL
        log.info("built-in voices on %s (engines: %s)", self._server.base_url,
                 ", ".join(e.name for e in self.engine.engines))
        for hint in hints:
            log.info("built-in voice missing: %s", hint)

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def token(self) -> str:
        """The bearer token every request must carry (use it as the OpenAI SDK's api_key)."""
        token = self._server.token
        assert token is not None  # always set by __init__
        return token

    @property
    def native_id(self) -> int | None:
        """The server thread's OS thread id (for per-thread CPU accounting)."""
        return self._server.native_id

    def voices(self) -> list[VoiceInfo]:
        return self.engine.voices()

    def models(self) -> list[str]:
        return self.engine.models()

    @property
    def records(self) -> list[RequestRecord]:
        """One RequestRecord per speech request, times on this process's time.monotonic()."""
        return self._server.records

    @property
    def shaping(self) -> Shaping:
        return self._server.shaping

    @shaping.setter
    def shaping(self, value: Shaping | None) -> None:
        # Takes effect from the next request; the window's network simulator sets it between Speaks.
        self._server.shaping = value

    def stop(self) -> None:
        """Stop serving (open streams are cut), join the server thread, release the engines' workers.

        Safe to call twice."""
        try:
            self._server.stop()
        finally:
            self.engine.close()

    def __enter__(self) -> BuiltinServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
