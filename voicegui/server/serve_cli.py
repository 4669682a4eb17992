"""`voicegui serve`: run the built-in OpenAI-compatible speech server in the foreground until Ctrl+C.

Until offline voices are wired in, the only engine is `--replay FILE` (streams that file for any text).
The shaping options simulate a slow or broken server for testing clients (see server/shaping.py).
Only loopback hosts are accepted: the server has no TLS and at most a shared bearer token.

Threads: everything runs on the main thread's asyncio loop (aiohttp's web.run_app handles SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
from pathlib import Path

from voicegui.server.shaping import Shaping

log = logging.getLogger("voicegui.serve")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _nonneg_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from exc
    if not x >= 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return x


def _positive_float(value: str) -> float:
    x = _nonneg_float(value)
    if x == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return x


def _nonneg_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _positive_int(value: str) -> int:
    n = _nonneg_int(value)
    if n == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return n


def _error_status(value: str) -> int:
    n = _nonneg_int(value)
    if not 400 <= n <= 599:
        raise argparse.ArgumentTypeError("must be an HTTP error status, 400..599")
    return n


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `serve`'s options to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_nonneg_int, default=8880, metavar="N", help="TCP port (default 8880; 0 = any free)")
    parser.add_argument("--replay", type=Path, default=None, metavar="FILE",
                        help="serve this audio file for every request (required until offline voices exist)")
    parser.add_argument("--token", default=None,
                        help="require 'Authorization: Bearer TOKEN' (default: no key needed)")
    shaping = parser.add_argument_group("network shaping (for testing clients)")
    shaping.add_argument("--first-byte-delay-ms", type=_nonneg_float, default=0.0, metavar="MS",
                         help="wait this long before sending the response headers")
    shaping.add_argument("--throughput-x", type=_positive_float, default=None, metavar="X",
                         help="deliver audio at X times real time (default: as fast as it is encoded)")
    shaping.add_argument("--jitter-ms", type=_nonneg_float, default=0.0, metavar="MS",
                         help="extra random delay of up to MS ms per write")
    shaping.add_argument("--write-bytes", type=_positive_int, default=1024, metavar="N",
                         help="bytes per server write (default 1024)")
    shaping.add_argument("--cut-after-bytes", type=_nonneg_int, default=None, metavar="N",
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
                   error_status=args.error_status, write_bytes=args.write_bytes)


def run_serve(args: argparse.Namespace) -> int:
    """Run the server until interrupted. Returns a process exit code; errors are logged as one line."""
    from aiohttp import web

    from voicegui.server.app import create_app
    from voicegui.server.engines.replay import ReplayEngine

    if log.getEffectiveLevel() > logging.INFO:
        # The "ready on URL" line is the server's interface (scripts and smoke tests wait for it), so it
        # shows even when the CLI's default log level is WARNING.
        log.setLevel(logging.INFO)
    if not _is_loopback(args.host):
        log.error("refusing to listen on %s: the built-in server is for this computer only; use 127.0.0.1",
                  args.host)
        return EXIT_USAGE
    if args.replay is None:
        log.error("no voice to serve: pass --replay FILE (an audio file streamed for every request); "
                  "offline voices are not available yet")
        return EXIT_USAGE
    if not args.replay.is_file():
        log.error("--replay: no such file: %s", args.replay)
        return EXIT_USAGE
    try:
        engine = ReplayEngine(args.replay)
    except (OSError, ValueError) as exc:  # av.FFmpegError subclasses OSError/ValueError
        log.error("--replay: cannot read %s as audio: %s", args.replay, exc)
        return EXIT_FAILED
    try:
        shaping = shaping_from_args(args)
    except ValueError as exc:
        log.error("bad shaping options: %s", exc)
        return EXIT_USAGE
    app = create_app(engine, shaping=shaping, token=args.token)

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        # Listen now, so connections made right after the "ready" line are queued by the kernel.
        sock.listen(128)
    except OSError as exc:
        sock.close()
        log.error("cannot listen on %s:%d: %s", args.host, args.port, exc.strerror or exc)
        return EXIT_FAILED
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    url = f"http://{shown_host}:{port}/v1"

    async def announce(_app: web.Application) -> None:
        # on_startup runs just before aiohttp starts accepting; the socket already listens, so a client
        # acting on this line at once is queued, not refused.
        log.info("ready on %s (replaying %s, %.2f s; models: %s)", url, args.replay.name, engine.duration_s,
                 ", ".join(engine.models()))

    app.on_startup.append(announce)
    try:
        web.run_app(app, sock=sock, print=None, access_log=None, handler_cancellation=True,
                    shutdown_timeout=1.0)
    except KeyboardInterrupt:
        pass
    log.info("server stopped")
    return EXIT_OK
