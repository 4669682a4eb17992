"""`voicegui serve`: run the built-in OpenAI-compatible speech server in the foreground until Ctrl+C.

By default it serves the offline voices (BuiltinEngine over `available_engines()`: hibari "heart",
espeak-ng, piper) under the model id "builtin"; it logs which engines are present and how to add the
missing ones. `--replay FILE` serves that audio file for any text instead (for testing clients).
The shaping options simulate a slow or broken server for testing clients (see server/shaping.py).
Only loopback hosts are accepted: the server has no TLS.

An API key (bearer token) is required by default, because the port is open to every local user and program,
and to every web page the user visits (the server also refuses foreign Host and Origin headers, see
server/app.py): a random one from `secrets`, printed once on the "ready on URL -- API key: ..." line, or the
one in $VOICEGUI_SERVE_TOKEN (not printed). `--token KEY` still works but warns: other local users can read a
command line (`ps`). `--no-token` accepts any key, with a warning.

Threads: the server runs on the main thread's asyncio loop (aiohttp's web.run_app handles SIGINT/SIGTERM);
the offline engines are loaded on the main thread before it listens, and do their blocking synthesis in
their own worker threads (see engines/base.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from voicegui.cli.args import EXIT_FAILED, EXIT_OK, EXIT_USAGE, nonneg_float, nonneg_int, positive_float, positive_int
from voicegui.server.shaping import Shaping

if TYPE_CHECKING:  # the engine modules pull in numpy/av; `voicegui --help` should not pay for them
    from voicegui.server.engines.base import Engine

log = logging.getLogger("voicegui.serve")

# Where `voicegui serve` takes its API key from when --token is not given (the environment is private to the
# user, a command line is not).
TOKEN_ENV = "VOICEGUI_SERVE_TOKEN"

def _error_status(value: str) -> int:
    n = nonneg_int(value)
    if not 400 <= n <= 599:
        raise argparse.ArgumentTypeError("must be an HTTP error status, 400..599")
    return n


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `serve`'s options to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=nonneg_int, default=8880, metavar="N",
                        help="TCP port (default 8880; 0 = any free)")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="serve this audio file for every request instead of the offline voices")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--token", default=None, metavar="KEY",
                     help=f"require this API key ('Authorization: Bearer KEY'); other local users can read a "
                          f"command line, so prefer ${TOKEN_ENV}. Default: the key in ${TOKEN_ENV}, else a "
                          f"random one, printed on the 'ready on' line")
    key.add_argument("--no-token", action="store_true",
                     help="accept any api_key (any program or local user can then use the server)")
    shaping = parser.add_argument_group("network shaping (for testing clients)")
    shaping.add_argument("--first-byte-delay-ms", type=nonneg_float, default=0.0, metavar="MS",
                         help="wait this long before sending the response headers")
    shaping.add_argument("--throughput-x", type=positive_float, default=None, metavar="X",
                         help="deliver audio at X times real time (default: as fast as it is encoded)")
    shaping.add_argument("--jitter-ms", type=nonneg_float, default=0.0, metavar="MS",
                         help="extra random delay of up to MS ms per write")
    shaping.add_argument("--burst-ms", type=nonneg_float, default=0.0, metavar="MS",
                         help="bursty delivery: hold writes back and release them together every MS ms "
                              "(needs --throughput-x)")
    shaping.add_argument("--slow-start-ms", type=nonneg_float, default=0.0, metavar="MS",
                         help="deliver the first MS ms of audio at --slow-start-x times real time, the rest at "
                              "--throughput-x (needs --throughput-x)")
    shaping.add_argument("--slow-start-x", type=positive_float, default=0.5, metavar="X",
                         help="the delivery rate during --slow-start-ms (default 0.5)")
    shaping.add_argument("--write-bytes", type=positive_int, default=1024, metavar="N",
                         help="bytes per server write (default 1024)")
    shaping.add_argument("--cut-after-bytes", type=nonneg_int, default=None, metavar="N",
                         help="close the connection after sending N body bytes")
    shaping.add_argument("--error-status", type=_error_status, default=None, metavar="STATUS",
                         help="answer every speech request with this HTTP error status")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def shaping_from_args(args: argparse.Namespace) -> Shaping:
    """The Shaping described by serve's command-line options."""
    return Shaping(first_byte_delay_s=args.first_byte_delay_ms / 1000.0, throughput_x=args.throughput_x,
                   jitter_s=args.jitter_ms / 1000.0, cut_after_bytes=args.cut_after_bytes,
                   error_status=args.error_status, write_bytes=args.write_bytes, burst_s=args.burst_ms / 1000.0,
                   slow_start_s=args.slow_start_ms / 1000.0, slow_start_x=args.slow_start_x)


def _valid_token(value: str, source: str) -> str:
    # It travels in an HTTP header: printable ASCII, no spaces (the server strips the header's own spaces).
    if not value or not all("!" <= c <= "~" for c in value):
        raise _ServeError(EXIT_USAGE, f"{source}: the API key must be non-empty printable ASCII without spaces")
    return value


def resolve_token(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """The API key serve requires (None: any key) and how the "ready on" line shows it.

    --no-token > --token > $VOICEGUI_SERVE_TOKEN > a new random key (the only one that is printed: the
    user needs it, and has not seen it anywhere else). Warnings go to the log (stderr)."""
    from_env = environ.get(TOKEN_ENV)
    if args.no_token:
        if from_env is not None:
            log.warning("--no-token: $%s is ignored", TOKEN_ENV)
        log.warning("--no-token: any program or user on this computer can use this server without a key")
        return None, "no API key needed (--no-token)"
    if args.token is not None:
        log.warning("--token: other users of this computer can read the key in the process list (ps); "
                    "set $%s instead", TOKEN_ENV)
        return _valid_token(args.token, "--token"), "API key: the one given with --token"
    if from_env is not None:
        return _valid_token(from_env, f"${TOKEN_ENV}"), f"API key: the one in ${TOKEN_ENV}"
    token = secrets.token_urlsafe(24)
    return token, f"API key: {token}"


class _ServeError(Exception):
    """A start-up failure: logged as one line, then the process exits with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _replay_engine(path: Path) -> tuple[Engine, str]:
    from voicegui.server.engines.replay import ReplayEngine

    if not path.is_file():
        raise _ServeError(EXIT_USAGE, f"--replay: no such file: {path}")
    try:
        engine = ReplayEngine(path)
    except (OSError, ValueError) as exc:  # av.FFmpegError subclasses OSError/ValueError
        raise _ServeError(EXIT_FAILED, f"--replay: cannot read {path} as audio: {exc}") from exc
    return engine, f"replaying {path.name}, {engine.duration_s:.2f} s"


def _builtin_engine() -> tuple[Engine, str]:
    from voicegui.server.engines.builtin import BuiltinEngine, available_engines

    # Loads and warms every engine here, before the socket listens: the first request must not pay for it,
    # and "ready" must mean ready.
    engines, hints = available_engines(warm=True)
    for hint in hints:
        log.warning("voice engine missing: %s", hint)
    if not engines:
        raise _ServeError(EXIT_FAILED, "no offline voice engine works here; install one (see above) or pass "
                                       "--replay FILE")
    engine = BuiltinEngine(engines)
    for sub in engine.engines:
        ids = [v.id for v in sub.voices()]
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        log.info("engine %s: %d voice%s (%s)", sub.name, len(ids), "" if len(ids) == 1 else "s", shown)
    voices = engine.voices()
    default = "heart" if any(v.id == "heart" for v in voices) else voices[0].id
    return engine, f"{len(voices)} built-in voices, default model {engine.models()[0]!r} voice {default!r}"


def _close(engine: Engine | None) -> None:
    close = getattr(engine, "close", None)
    if callable(close):
        close()


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted. Returns a process exit code; errors are logged as one line."""
    if log.getEffectiveLevel() > logging.INFO:
        # The "ready on URL" line and the engine list are the server's interface (scripts and smoke tests
        # wait for the line), so they show even when the CLI's default log level is WARNING.
        log.setLevel(logging.INFO)
    if not _is_loopback(args.host):
        log.error("refusing to listen on %s: the built-in server is for this computer only; use 127.0.0.1",
                  args.host)
        return EXIT_USAGE
    try:
        shaping = shaping_from_args(args)
    except ValueError as exc:
        log.error("bad shaping options: %s", exc)
        return EXIT_USAGE
    engine: Engine | None = None
    try:
        # Before the engines load: a bad key is a usage error, and should not take seconds to report.
        token, key_line = resolve_token(args, os.environ)
        engine, what = _replay_engine(args.replay) if args.replay is not None else _builtin_engine()
        return _serve(args, engine, what, shaping, token, key_line)
    except _ServeError as exc:
        log.error("%s", exc)
        return exc.code
    except KeyboardInterrupt:
        # Ctrl+C while the engines load (web.run_app handles it once serving).
        log.info("interrupted before the server started")
        return EXIT_FAILED
    finally:
        _close(engine)


def _serve(args: argparse.Namespace, engine: Engine, what: str, shaping: Shaping, token: str | None,
           key_line: str) -> int:
    from voicegui.aiohttp_import import web
    from voicegui.server.app import create_app, server_options

    app = create_app(engine, shaping=shaping, token=token)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        # Listen now, so connections made right after the "ready" line are queued by the kernel.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise _ServeError(EXIT_FAILED, f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from exc
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    url = f"http://{shown_host}:{port}/v1"

    async def announce(_app: web.Application) -> None:
        # on_startup runs just before aiohttp starts accepting; the socket already listens, so a client
        # acting on this line at once is queued, not refused. The key comes last on the line, easy to copy.
        log.info("ready on %s (%s; models: %s) -- %s", url, what, ", ".join(engine.models()), key_line)

    app.on_startup.append(announce)
    try:
        # server_options: handler cancellation and the bound on slow request heads (app.server_options).
        web.run_app(app, sock=sock, print=None, shutdown_timeout=1.0, **server_options())
    except KeyboardInterrupt:
        pass
    log.info("server stopped")
    return EXIT_OK
