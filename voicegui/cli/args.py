"""What the command-line entry points share: exit codes, argparse value types (numbers checked with one
clear message), the playback arguments of speak and lineup, where the API key comes from (`--api-key-file`,
$OPENAI_API_KEY, `--api-key` with a warning: `api_key_from`) and how a server's words reach the terminal
(`terminal_safe`: redacted, control characters escaped, so a server can neither show a key nor drive the
terminal with escape sequences; `safe_output()` applies it to everything a subcommand prints).

One module so that the subcommands (main, lineup, serve, bench, desktop_install) depend on it and never on
each other for these.

Threads: pure functions, called by argparse and the subcommands on the main thread.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from voicegui.crash import redact
from voicegui.formats import PCM_RATES
from voicegui.limits import MAX_PREBUFFER_MS, MAX_SPEED, MIN_SPEED
from voicegui.request_extras import MAX_EXTRA_BODY_CHARS, ExtrasError, parse_extra_body

if TYPE_CHECKING:  # imported where used: argument parsing must not start (or load) the offline engines
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.builtin import BuiltinEngine

# The process exit codes of every subcommand: 2 is argparse's own for a usage error.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _number(value: str, kind: type[float] | type[int], what: str, positive: bool) -> float | int:
    try:
        x = kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from exc
    if not x >= 0:  # also rejects NaN
        raise argparse.ArgumentTypeError("must be >= 0")
    if positive and x == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return x


def nonneg_float(value: str) -> float:
    return float(_number(value, float, "a number", positive=False))


def positive_float(value: str) -> float:
    return float(_number(value, float, "a number", positive=True))


def nonneg_int(value: str) -> int:
    return int(_number(value, int, "a whole number", positive=False))


def positive_int(value: str) -> int:
    return int(_number(value, int, "a whole number", positive=True))


SPEED_HELP = f"{MIN_SPEED:g} .. {MAX_SPEED:g}"


def speed_problem(speed: float | None) -> str | None:
    """Why --speed is refused (one line for stderr), or None when it is absent or in range."""
    if speed is not None and not MIN_SPEED <= speed <= MAX_SPEED:
        return f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {speed}"
    return None


def prebuffer_ms(value: str) -> float | None:
    """--prebuffer-ms: "auto" (None) or milliseconds, 0..MAX_PREBUFFER_MS."""
    if value == "auto":
        return None
    try:
        ms = float(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"must be 'auto' or milliseconds, not {value!r}") from exc
    if not 0 <= ms <= MAX_PREBUFFER_MS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_PREBUFFER_MS} ms")
    return ms


def latency(value: str) -> str | float:
    """--latency: low, high or seconds (stream.latency_setting's rules)."""
    from voicegui.stream.latency_setting import parse_latency

    try:
        return parse_latency(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def pcm_rate(value: str) -> int:
    rate = positive_int(value)
    if rate not in PCM_RATES:
        raise argparse.ArgumentTypeError(f"must be between {PCM_RATES.start} and {PCM_RATES.stop - 1} Hz")
    return rate


def extra_body(value: str) -> dict[str, Any]:
    """--extra-body: a JSON object, or @PATH of a file holding one (request_extras.parse_extra_body's rules)."""
    where = "--extra-body"
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_EXTRA_BODY_CHARS + 1)
            value = raw.decode("utf-8")
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{path} is not UTF-8 text") from exc
        where = f"--extra-body file {path}"
    try:
        return parse_extra_body(value, where)
    except ExtrasError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def stream_field(value: str) -> bool | None:
    """--stream-field: auto (None: as the server's profile says), on, off."""
    choices: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
    if value not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, on or off, not {value!r}")
    return choices[value]


def add_request_extra_arguments(p: argparse.ArgumentParser) -> None:
    """Request fields beyond OpenAI's: the stream flag, Kokoro's lang_code, a free-form JSON body."""
    p.add_argument("--stream-field", type=stream_field, default=None, metavar="auto|on|off",
                   help='send "stream": true in the request body (auto, the default: to every server but OpenAI '
                        "and the built-in voices; Kokoro ONNX servers and LocalAI stream only when asked)")
    p.add_argument("--lang-code", default="", metavar="LETTER",
                   help="Kokoro's lang_code, e.g. a (American English) or b (British English)")
    p.add_argument("--extra-body", type=extra_body, default=None, metavar="JSON|@FILE",
                   help='more request fields as a JSON object, e.g. \'{"seed": 42}\', or @file.json; it may not '
                        "set model, input, voice or response_format (use their options)")


def add_playback_arguments(p: argparse.ArgumentParser) -> None:
    """Buffer and device knobs shared by speak and lineup."""
    p.add_argument("--chunk-bytes", type=positive_int, default=None,
                   help="hand network bytes on in chunks of N (default: as they arrive)")
    p.add_argument("--prebuffer-ms", type=prebuffer_ms, default=None, metavar="auto|N",
                   help="audio to buffer before playback starts (default auto: from the measured delivery rate)")
    p.add_argument("--max-buffer-s", type=positive_float, default=10.0,
                   help="most audio held in memory; beyond it the network is not read (default 10)")
    p.add_argument("--device", default=None, help="output device index or name (see: voicegui devices)")
    p.add_argument("--latency", type=latency, default="low", help="device latency: low, high or seconds")
    p.add_argument("--blocksize", type=int, default=0, help="device block size in frames (0: automatic)")
    p.add_argument("--volume", type=float, default=1.0, help="playback volume, 0..1 (default 1)")
    p.add_argument("--pcm-rate", type=pcm_rate, default=None, metavar="HZ",
                   help="the sample rate of the server's raw pcm when it does not say (default: what its "
                        "response headers announce, else 24000; Piper voices: 22050)")


def add_stream_format_argument(p: argparse.ArgumentParser) -> None:
    """--stream-format, for the subcommands that pass it on to their SpeechRequest (speak)."""
    from voicegui.speech_sse import STREAM_FORMATS

    p.add_argument("--stream-format", default="audio", choices=STREAM_FORMATS,
                   help="how the server streams the audio: 'audio' (the body is the audio, every server) or "
                        "'sse' (server-sent events carrying it: OpenAI's gpt-4o-mini-tts and newer, not tts-1; "
                        "speaches, vLLM-Omni, the built-in voices). Default: audio")


# --- the API key ------------------------------------------------------------------------------------------------

KEY_ENV = "OPENAI_API_KEY"
ARGV_KEY_WARNING = ("warning: --api-key puts the key on the command line, where other local users can see it "
                    f"in ps; use {KEY_ENV} or --api-key-file")


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    """Which server and which key: shared by speak, lineup and voices."""
    p.add_argument("--base-url", default=None,
                   help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8880/v1 (default: the built-in "
                        "offline voices, started for this run)")
    p.add_argument("--api-key", default=None,
                   help=f"API key for --base-url (default: ${KEY_ENV}; the built-in voices need none); "
                        f"other local users can see it in ps: prefer ${KEY_ENV} or --api-key-file")
    p.add_argument("--api-key-file", type=Path, default=None, metavar="PATH",
                   help="read the API key from this file (only you may be able to read it, as ssh wants of a "
                        f"private key); better than --api-key, which other users see in ps. Default: ${KEY_ENV}")


class KeyFileError(ValueError):
    """The key file cannot be used; the message is one sentence for stderr."""


def read_key_file(path: Path) -> str:
    """The key in `path`, stripped. KeyFileError if it is missing, empty, or readable by group or others."""
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise KeyFileError(f"the key file {path} is not a regular file")
            if mode & 0o077:
                # ssh refuses such a private key for the same reason: someone else may have read it already.
                raise KeyFileError(f"the key file {path} can be read by other users (mode {stat.S_IMODE(mode):04o}); "
                                   f"make it private with: chmod 600 {path}")
            data = f.read(64 * 1024 + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc
    if len(data) > 64 * 1024:
        raise KeyFileError(f"the key file {path} is over 64 KB: not an API key")
    try:
        key = data.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"the key file {path} is not text") from exc
    if not key:
        raise KeyFileError(f"the key file {path} is empty")
    if "\n" in key:
        raise KeyFileError(f"the key file {path} has more than one line; put only the key in it")
    return key


def api_key_from(cli_key: str | None, key_file: Path | None) -> tuple[str | None, list[str]]:
    """(the API key, warnings for stderr) from --api-key, --api-key-file or $OPENAI_API_KEY, in that order;
    None when none is given. KeyFileError for an unusable key file or both options at once."""
    if cli_key is not None and key_file is not None:
        raise KeyFileError("give either --api-key or --api-key-file, not both")
    if key_file is not None:
        return read_key_file(key_file), []
    if cli_key is not None:
        return cli_key, [ARGV_KEY_WARNING]
    return os.environ.get(KEY_ENV) or None, []


# --- what reaches the terminal ----------------------------------------------------------------------------------

# C0 and C1 controls and DEL, but newline and tab: ESC starts the sequences that retitle, clear or "type into"
# a terminal; CR overwrites a line (a fake "ok"); C1 CSI (\x9b) is ESC [ on some terminals.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """`text` redacted (voicegui.crash.redact) and with control characters but newline and tab escaped as
    \\xNN, so a server's message can be printed as it is."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", redact(text))


class TerminalSafeFormatter(logging.Formatter):
    """Log lines through terminal_safe: a server's words reach log messages too (a line-up's warm-up
    failure, a refused field) and must not drive the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


class _SafeStream(io.TextIOBase):
    """A text stream that passes everything written through terminal_safe."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        self._stream.write(terminal_safe(s))
        return len(s)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return self._stream.encoding


@contextlib.contextmanager
def safe_output() -> Iterator[None]:
    """Everything printed to stdout and stderr inside goes through terminal_safe (for a subcommand that prints
    what servers say in many places, e.g. lineup's per-voice errors)."""
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _SafeStream(old_out), _SafeStream(old_err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err


def start_builtin(
        before_start: Callable[[BuiltinEngine, str], object] | None = None) -> tuple[BuiltinServer | None, str]:
    """The built-in voices for this run (each engine loads on its first request, so only the voices asked for
    cost anything), or None and one sentence why not. The caller stops it. `before_start`: BuiltinServer's."""
    from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable

    try:
        return BuiltinServer(lazy=True, before_start=before_start), ""
    except BuiltinUnavailable as exc:
        return None, f"{exc}; or pass --base-url of an OpenAI-compatible server"
    except (OSError, RuntimeError) as exc:
        return None, f"cannot start the built-in voices: {exc}"
