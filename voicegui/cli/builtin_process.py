"""The built-in voices of one `voicegui speak`, served by a child process forked at the command's first line.

Why: the command is CPU-bound from launch to first sound, and one Python process uses one core (the GIL): the
openai SDK's import (the request cannot go out before it), the server's (aiohttp, numpy) and the voice's model
load all took turns on it. A child forked before any of them imports and starts the built-in server and loads
the voice on the second core while the parent imports the SDK and the audio stack.

`BuiltinProcess.fork(voice)` forks (the caller must have started no thread yet: a fork copies one thread and
every lock as it was). The child starts `BuiltinServer` (lazy engines, `voice`'s model loading at once) on
127.0.0.1 with a fresh token, writes one JSON line to a pipe (base URL, token, default model and voice, or the
sentence saying why there are no built-in voices), then serves until the parent stops it or ends: it reads a
second pipe, whose end the parent holds, until EOF, and the kernel sends it SIGTERM if the parent dies
(PR_SET_PDEATHSIG). It ignores SIGINT: a Ctrl+C in the terminal reaches both, and the parent answers it.
`ready()` waits for that line; `stop()` closes the pipe and waits for the child (killing it after STOP_WAIT_S).

Threads: the parent's calls come from its main thread. The child's main thread waits on the pipe; its server
runs on ServerThread's thread, its model loads on the preload thread (cli/preload.py).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from voicegui.server.embedded import BuiltinServer

log = logging.getLogger(__name__)

STOP_WAIT_S = 5.0
# The child answers once its server listens (engines load after that, on their first request or in the
# background): seconds at most, unless the machine is stuck.
READY_WAIT_S = 60.0
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


class SpeakArgs(NamedTuple):
    """What speak_args read: the --base-url given (None: the built-in voices), the --voice given, -v's count."""

    base_url: str | None
    voice: str | None
    verbose: int

    @property
    def builtin(self) -> bool:
        return self.base_url is None


def speak_args(argv: list[str], command_at: int) -> SpeakArgs:
    """What `voicegui speak`'s argv says, read without parsing (the fork comes before argparse is imported).
    argparse takes any unambiguous prefix of an option: --ba... is --base-url, --voi... is --voice."""
    base_url, voice, verbose = None, None, 0
    for arg in argv[:command_at]:
        if arg == "--verbose" or arg.startswith("--verb"):
            verbose += 1
        elif arg.startswith("-v") and set(arg[1:]) == {"v"}:
            verbose += len(arg) - 1
    words = argv[command_at + 1:]
    for i, arg in enumerate(words):
        if arg == "--":
            break
        name, equals, value = arg.partition("=")
        given = value if equals else (words[i + 1] if i + 1 < len(words) else "")
        if len(name) >= 4 and "--base-url".startswith(name):
            base_url = given
        elif len(name) >= 5 and "--voice".startswith(name):
            voice = given or None
    return SpeakArgs(base_url, voice, verbose)


class BuiltinAddress(NamedTuple):
    """Where the child serves, or why it cannot (`problem`, one sentence; then the rest is empty)."""

    base_url: str = ""
    token: str = ""
    default_model: str = ""
    default_voice: str = ""
    problem: str = ""


class BuiltinProcess:
    """A forked child serving the built-in voices for this command (see the module docstring)."""

    def __init__(self, pid: int, ready_fd: int, alive_fd: int) -> None:
        self.pid = pid
        self._ready_fd = ready_fd  # the child writes its one line here
        self._alive_fd = alive_fd  # the child serves until this closes
        self._address: BuiltinAddress | None = None
        self._stopped = False
        self._reaped = False  # waited for: its pid may be another process's by now

    @classmethod
    def fork(cls, voice: str | None, verbose: int = 0) -> BuiltinProcess:
        """Fork the child (OSError if the system refuses). Call before any thread is started."""
        ready_r, ready_w = os.pipe()
        alive_r, alive_w = os.pipe()
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            for fd in (ready_r, ready_w, alive_r, alive_w):
                os.close(fd)
            raise
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                os.close(ready_r)
                os.close(alive_w)
                code = _serve(voice, verbose, ready_w, alive_r, parent)
            except Exception as exc:  # the parent says the process ended before serving, or its request fails
                log.error("the built-in voices' process failed: %s", exc)
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(alive_r)
        return cls(pid, ready_r, alive_w)

    def ready(self) -> BuiltinAddress:
        """The child's address once it serves (blocks until then), or the problem it reported or died of."""
        if self._address is None:
            line = _read_line(self._ready_fd, READY_WAIT_S)
            os.close(self._ready_fd)
            try:
                self._address = BuiltinAddress(**json.loads(line)) if line else None
            except (ValueError, TypeError) as exc:
                log.debug("the built-in voices' process wrote %r (%s)", line[:200], exc)
                self._address = None
            if self._address is None:
                self._address = BuiltinAddress(problem=f"the built-in voices' process ended before serving "
                                                       f"({self._exit_status()})")
        return self._address

    def stop(self) -> None:
        """End the child and wait for it (at most STOP_WAIT_S, then SIGKILL). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        os.close(self._alive_fd)
        if self._address is None:  # never asked for (a usage error, --base-url after all): it has served nothing
            os.close(self._ready_fd)
            if not self._reaped:
                os.kill(self.pid, signal.SIGTERM)
        if self._reaped:
            return
        if _wait(self.pid, STOP_WAIT_S) is None:
            log.warning("the built-in voices' process did not end within %.0f s: killed", STOP_WAIT_S)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        self._reaped = True

    def _exit_status(self) -> str:
        status = _wait(self.pid, STOP_WAIT_S)
        self._reaped = status is not None
        if status is None:
            return "it did not answer"
        if os.WIFSIGNALED(status):
            return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        return f"exit code {os.waitstatus_to_exitcode(status)}"


def _read_line(fd: int, timeout_s: float) -> bytes:
    """One line from `fd` (b"" at EOF, or when nothing complete came within `timeout_s`)."""
    import select
    import time

    data = b""
    deadline = time.monotonic() + timeout_s
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return b""
        chunk = os.read(fd, 4096)
        if not chunk:
            return b""
        data += chunk
    return data


def _wait(pid: int, timeout_s: float) -> int | None:
    """The child's wait status once it has ended, or None if it is still running after `timeout_s`."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _serve(voice: str | None, verbose: int, ready_w: int, alive_r: int, parent: int) -> int:
    """The child's whole life: serve the built-in voices until `alive_r` reaches EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    logging.basicConfig(level=logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)
    # This process makes no TLS connection (it serves loopback HTTP; nothing downloads at run time), yet aiohttp's
    # client builds two verifying TLS contexts when imported: ~60 ms of reading the system's CA store, on the way
    # to serving, which is on the command's way to its first sound. voicegui/aiohttp_import.py keeps the client
    # out of this process; should it load aiohttp as usual (a newer aiohttp of another shape), an empty store
    # still makes those contexts cheap.
    os.environ["SSL_CERT_FILE"] = os.environ["SSL_CERT_DIR"] = os.devnull
    from voicegui import crash
    from voicegui.cli.args import start_builtin
    from voicegui.cli.preload import load_voice_in_background

    crash.install_excepthook(None)
    builtin, problem = start_builtin(
        before_start=lambda engines, default: load_voice_in_background(engines, voice or default))
    if builtin is None:
        _tell(ready_w, {"problem": problem})
        return 1
    try:
        crash.register_secret(builtin.token)
        if _tell(ready_w, {"base_url": builtin.base_url, "token": builtin.token,
                           "default_model": builtin.default_model, "default_voice": builtin.default_voice}):
            _import_first_synthesis(builtin, voice or builtin.default_voice)
            while os.read(alive_r, 4096):  # EOF: the parent stopped us or ended
                pass
    finally:
        builtin.stop()
    return 0


def _import_first_synthesis(builtin: BuiltinServer, voice: str) -> None:
    """Import what the first synthesis with `voice` imports (PyAV, for an engine that resamples), while the
    parent's request is on its way: that request would import it (~40 ms). Measured: espeak-ng's first sound
    ~35-50 ms sooner (with the CA store below, medians of 10, two rounds)."""
    from voicegui.server.engines.audio import RESAMPLING_ENGINES
    from voicegui.server.engines.base import EngineError

    try:
        engine = builtin.engine.engine_for(voice)
    except EngineError:
        return  # the request gets the server's own answer
    if engine.name in RESAMPLING_ENGINES:
        try:
            import av  # noqa: F401
        except ImportError as exc:  # a broken install: the request's synthesis says so in the server's answer
            log.debug("PyAV could not be imported ahead: %s", exc)


def _tell(ready_w: int, answer: dict[str, str]) -> bool:
    """Write the one line to the parent; False when it no longer listens (it ended, or stopped us unasked)."""
    try:
        os.write(ready_w, (json.dumps(answer) + "\n").encode())
    except BrokenPipeError:
        return False
    finally:
        os.close(ready_w)
    return True


def _die_with(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies, however it dies (Linux's PR_SET_PDEATHSIG; elsewhere the
    child ends when the parent's pipe closes, i.e. when the parent ends by any means but a kill)."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NAME, b"voicegui-voices", 0, 0, 0)  # what ps/top show for it (best effort)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.debug("PR_SET_PDEATHSIG failed (errno %d): the child ends when the parent's pipe closes",
                  ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)
