"""Crash safety and secret hygiene for logs: uncaught exceptions go to a rotating log file (and optionally a
dialog), and nothing that looks like an API key is ever written by logging.

* `install_excepthook(show)` routes uncaught exceptions from the main thread (sys.excepthook), from other
  threads (threading.excepthook) and, through `install_loop_handler(loop)` / `loop_exception_handler`, from
  asyncio callbacks and tasks, into the "voicegui.crash" logger. That logger writes to
  `app_dirs.log_dir()/voicegui.log` (a RotatingFileHandler, 1 MB x 3, made at the first record it gets; also
  every voicegui WARNING and above) and propagates to whatever the application configured (stderr for the CLI).
* `show(text)` (the window's error dialog, for instance) is called with a short redacted summary, at most one
  at a time: while a dialog is open further crashes are only logged. The UI calls `dialog_closed()` when the
  user dismisses it. A `show` that raises is logged and never re-enters the hooks.
* `redact(text)` replaces OpenAI-style keys (sk-...), Bearer tokens, api_key=... pairs, secrets in a URL's
  query (?key=, api_key=, token=, sig=, ...) or user:password@ part, and any secret given to
  `register_secret()` with "[REDACTED]". `install_log_redaction()` applies it to every log record at
  creation (a record factory, so it covers all loggers and all handlers, including ones added later): the
  message with its arguments, the formatted traceback and the stack info. It is the one redaction of the
  app: the CLI's stderr and --json, the history, the line-up report and the window's labels use it too.
* The log file is created 0600 (it may hold server messages and file paths), and what goes into it has the
  text of a speech request replaced by its length (`hide_request_text`): a crash report is meant to be sent
  to someone, what the user had read aloud is not theirs.

Threads: the hooks may run on any thread (threading.excepthook runs on the failing thread); `show` is called
on that same thread, so a Qt caller must hand it to the GUI thread itself (e.g. a queued signal). The "dialog
open" flag is guarded by a lock. Logging's own locks make the file writes safe from any thread.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from voicegui.app_dirs import log_dir

if TYPE_CHECKING:  # imported where used: `voicegui stop` handed to the window must start in a few tens of ms
    import asyncio
    import logging.handlers

log = logging.getLogger("voicegui.crash")

LOG_FILE = "voicegui.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 3
REDACTED = "[REDACTED]"

# Why these shapes: OpenAI keys are sk-... / sk-proj-... / sk-svcacct-...; other providers' keys travel as
# "Authorization: Bearer X" and as api_key/token fields in JSON, query strings or repr()s of our dataclasses.
_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-=]{4,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|authorization|secret|password)['\"]?\s*[:=]\s*['\"]?)"
               r"(?!\[REDACTED\])[^'\"\s,}&)]{4,}"),
    # A URL's query parameters that carry credentials, whatever their length: Google-style ?key=, signed
    # URLs' sig=/signature=, ?auth=, ?access_token= (the pattern above wants 4+ characters and no "key").
    re.compile(r"(?i)([?&;](?:key|api[_-]?key|apikey|access[_-]?token|token|auth|sig|signature|secret|"
               r"password|pass|pwd|x-api-key)=)(?!\[REDACTED\])[^&#\s'\"<>]+"),
    # user:password@ in a URL (http://user:pw@host/v1).
    re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@'\"<>]*:)(?!\[REDACTED\])[^/\s@'\"<>]+(?=@)"),
)

# The text of a speech request as it appears in the reprs of our dataclasses (text='...') and in request
# bodies ("input": "..."): replaced by its length in the log file (see hide_request_text).
_REQUEST_TEXT = re.compile(r"""(\b(?:text|input)['"]?\s*[:=]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_show_lock = threading.Lock()
_dialog_open = False
_show: Callable[[str], None] | None = None
_file_handler: logging.Handler | None = None
_installed = False
_previous_hooks: list[Any] = []
_factory_installed = False


def register_secret(value: str | None) -> None:
    """Redact this exact string everywhere too (a key that does not look like one, e.g. a Kokoro token)."""
    if value and len(value) >= 4 and value != "none":
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """`text` with anything that looks like an API key or bearer token replaced by [REDACTED]."""
    if not text:
        return text
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[3].sub(lambda m: m.group(1) + REDACTED, text)
    text = _PATTERNS[4].sub(lambda m: m.group(1) + REDACTED, text)
    return text


def hide_request_text(text: str) -> str:
    """`text` with the text of speech requests (text='...', "input": "...") replaced by its length."""
    return _REQUEST_TEXT.sub(lambda m: f"{m.group(1)}<{len(m.group(2)) - 2} characters>", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so that no handler can write a key: message+args, traceback, stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            # Formatter.format() uses exc_text as it is once set, so the raw exception is never re-rendered.
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


class _RequestTextFilter(logging.Filter):
    """On the log file's handler (after redaction): the text of speech requests is logged as its length."""

    def filter(self, record: logging.LogRecord) -> bool:
        _FILTER.filter(record)  # message and traceback rendered (and redacted) into msg / exc_text
        record.msg = hide_request_text(str(record.msg))
        if record.exc_text:
            record.exc_text = hide_request_text(record.exc_text)
        if record.stack_info:
            record.stack_info = hide_request_text(record.stack_info)
        return True


def install_log_redaction() -> None:
    """Redact every log record from now on, whatever logger or handler (idempotent)."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _FILTER.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _private_rotating_file_handler() -> type[logging.handlers.RotatingFileHandler]:
    """A RotatingFileHandler whose files are 0600 whatever the umask (also one an older version left 0644).
    Made with the log file: logging.handlers (with pickle and queue, ~3 ms) is imported only then."""
    import logging.handlers

    class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        def _open(self) -> Any:
            fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.fchmod(fd, 0o600)
            return open(fd, self.mode, encoding=self.encoding, errors=self.errors)

    return PrivateRotatingFileHandler


class _LogFileAtFirstRecord(logging.Handler):
    """The log file's handler (WARNING and above). The folder, the file and its handler are made when the first
    record reaches it: finding the per-user log folder imports platformdirs (~8 ms on the main thread of a
    `voicegui speak`, before its request goes out), and most runs log no warning at all."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.file: logging.Handler | None = None
        self._tried = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self._tried:
            self._tried = True  # set first: the warning below comes back here
            self.file = self._open()
        if self.file is not None:
            self.file.handle(record)

    @staticmethod
    def _open() -> logging.Handler | None:
        directory = log_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handler = _private_rotating_file_handler()(directory / LOG_FILE, maxBytes=LOG_MAX_BYTES,
                                                       backupCount=LOG_BACKUPS, encoding="utf-8", delay=True)
        except OSError as exc:
            # A read-only home must not stop the app; crashes still reach stderr through propagation.
            logging.getLogger(__name__).warning("cannot write the log file in %s: %s", directory, exc)
            return None
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
        # Also redacts if the record factory was replaced later; and request texts are logged as their length.
        handler.addFilter(_RequestTextFilter())
        return handler

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        super().close()


def _ensure_file_handler() -> logging.Handler:
    global _file_handler
    if _file_handler is None:
        _file_handler = _LogFileAtFirstRecord()
        logging.getLogger("voicegui").addHandler(_file_handler)
    return _file_handler


def log_file() -> Path:
    return log_dir() / LOG_FILE


def _summary(exc_type: type[BaseException], exc: BaseException | None, where: str) -> str:
    text = f"{exc_type.__name__}: {exc}" if exc is not None and str(exc) else exc_type.__name__
    return hide_request_text(redact(f"voicegui hit an unexpected error {where}: {text}. "
                                    f"Details are in {log_file()}."))


def _report(exc_type: type[BaseException], exc: BaseException | None, tb: TracebackType | None,
            where: str) -> None:
    """Log one uncaught exception with its traceback, then offer it to `show` if no dialog is open."""
    _ensure_file_handler()
    log.critical("uncaught exception %s", where, exc_info=(exc_type, exc, tb))  # type: ignore[arg-type]  # exc None: thread hook; logging copes
    _offer(_summary(exc_type, exc, where))


def _offer(text: str) -> None:
    global _dialog_open
    show = _show
    if show is None:
        return
    with _show_lock:
        if _dialog_open:
            return  # one dialog at a time; this crash is in the log
        _dialog_open = True
    try:
        show(text)
    except Exception:  # the dialog itself failed: log it, and never loop back into the hooks
        _release()
        log.error("showing the crash dialog failed", exc_info=True)


def _release() -> None:
    global _dialog_open
    with _show_lock:
        _dialog_open = False


def dialog_closed() -> None:
    """The crash dialog was dismissed: the next uncaught exception may show one again."""
    _release()


def dialog_open() -> bool:
    return _dialog_open


def _sys_hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)  # Ctrl-C is not a crash
        return
    _report(exc_type, exc, tb, "in the main thread")


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # threading's own default ignores it too
    name = args.thread.name if args.thread is not None else "?"
    _report(args.exc_type, args.exc_value, args.exc_traceback, f"in thread {name!r}")


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An asyncio exception handler (loop.set_exception_handler) that reports like the other hooks."""
    exc = context.get("exception")
    message = str(context.get("message") or "asyncio error")
    if isinstance(exc, BaseException):
        _report(type(exc), exc, exc.__traceback__, f"in the event loop ({redact(message)})")
    else:
        _ensure_file_handler()
        log.error("event loop: %s", message)


def install_loop_handler(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Route `loop`'s (default: the running loop's) unhandled errors to loop_exception_handler."""
    import asyncio

    (loop or asyncio.get_running_loop()).set_exception_handler(loop_exception_handler)


def install_excepthook(show: Callable[[str], None] | None = None) -> None:
    """Log uncaught exceptions (main thread, other threads) to the rotating log file, redacted, and offer a
    summary to `show` one at a time. Also installs log redaction. Calling it again replaces `show`."""
    global _show, _installed
    _show = show
    install_log_redaction()
    _ensure_file_handler()
    if not _installed:
        _previous_hooks[:] = [sys.excepthook, threading.excepthook]
        sys.excepthook = _sys_hook
        threading.excepthook = _thread_hook
        _installed = True


def uninstall() -> None:
    """Undo install_excepthook (tests): the previous hooks back, file handler closed. Redaction stays on."""
    global _show, _installed, _file_handler
    if _installed:
        sys.excepthook, threading.excepthook = _previous_hooks
    _show = None
    _installed = False
    _release()
    if _file_handler is not None:
        logging.getLogger("voicegui").removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None
