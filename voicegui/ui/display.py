"""Whether the window can be shown here, and one clear sentence when it cannot.

Asked for a window where there is none to be had (an SSH session, a server, a $DISPLAY whose X server is gone, a
missing xcb library), Qt prints its platform plugins' notes ("xcb-cursor0 is needed", "Reinstalling the
application may fix this problem") and aborts the process: SIGABRT and a core dump, which reads as a crash and
names nothing the user can do. Here instead:

* `missing_display(env)`: no $DISPLAY, no $WAYLAND_DISPLAY and no platform chosen with $QT_QPA_PLATFORM: the
  sentence to say, before Qt is started at all.
* `platform_guard(on_failure)`: Qt's messages are held while the QApplication is made. If Qt gives up on every
  platform (its fatal message), `on_failure` gets one sentence built from what Qt noted (the display it could
  not reach, the plugin it could not load) and must end the process: Qt aborts as soon as the handler returns.
  Otherwise the held messages go to the log and the message handler from before is back.

Threads: the main thread, before and while the QApplication is made. Imports nothing of Qt until the guard is
used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

log = logging.getLogger(__name__)

WAYS_OUT = ("Run it in your desktop session, on a virtual screen (`xvfb-run -a voicegui`), or speak from the "
            "command line: `voicegui speak \"Hello\"`.")
_PLUGIN_NOTE = re.compile(r'Could not (?:load|find) the Qt platform plugin "([^"]+)"')
_UNKNOWN_PLUGIN = re.compile(r'Could not find the Qt platform plugin "([^"]+)"')
_AVAILABLE = re.compile(r"Available platform plugins are: ([^\n]*)")


def missing_display(env: Mapping[str, str]) -> str | None:
    """The sentence to say when there is no display to open the window on; None when there may be one."""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY") or env.get("QT_QPA_PLATFORM"):
        return None
    return f"cannot open the window: there is no display ($DISPLAY and $WAYLAND_DISPLAY are unset). {WAYS_OUT}"


def platform_failure(notes: list[str], fatal: str, env: Mapping[str, str]) -> str:
    """The sentence for Qt's `fatal` "no Qt platform plugin could be initialized", from the notes it made first."""
    if any("could not connect to display" in note for note in notes):
        return (f"cannot open the window: could not connect to the X display {_shown(env, 'DISPLAY')} (is its X "
                f"server running, and may this user use it?). {WAYS_OUT}")
    if any("wl_display" in note for note in notes):
        return (f"cannot open the window: could not connect to the Wayland display "
                f"{_shown(env, 'WAYLAND_DISPLAY')} (is the compositor running, and is $XDG_RUNTIME_DIR set?). "
                f"{WAYS_OUT}")
    unknown = [match.group(1) for note in notes if (match := _UNKNOWN_PLUGIN.search(note))]
    if unknown:
        available = _AVAILABLE.search(fatal)
        return (f"cannot open the window: Qt has no platform plugin {unknown[0]!r} (asked for by "
                f"$QT_QPA_PLATFORM={env.get('QT_QPA_PLATFORM', '')!r}); it has "
                f"{available.group(1).strip().rstrip('.') if available else 'none'}.")
    plugins = [match.group(1) for note in notes if (match := _PLUGIN_NOTE.search(note))]
    named = " or ".join(dict.fromkeys(plugins)) or "display"
    told = "; ".join(note for note in notes if not _PLUGIN_NOTE.search(note)) or "Qt gave no reason"
    return (f"cannot open the window: Qt could not start its {named} platform plugin ({told}). "
            f"`QT_DEBUG_PLUGINS=1 voicegui` names a missing library; the README's \"System packages\" lists "
            f"the ones the window needs.")


def _shown(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    return repr(value) if value else f"(${name} is unset)"


@contextmanager
def platform_guard(on_failure: Callable[[str], NoReturn], env: Mapping[str, str]) -> Iterator[None]:
    """Around the QApplication's construction: Qt's fatal platform failure becomes `on_failure(sentence)`."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    held: list[tuple[Any, str | None, str]] = []

    def handler(kind: Any, context: Any, message: str) -> None:
        if kind == QtMsgType.QtFatalMsg:
            on_failure(platform_failure([note for _kind, _category, note in held], message, env))
        held.append((kind, context.category, message))

    previous = qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(previous)  # None: Qt's own
        for kind, category, message in held:
            level = logging.DEBUG if kind in (QtMsgType.QtDebugMsg, QtMsgType.QtInfoMsg) else logging.WARNING
            log.log(level, "%s: %s", category or "qt", message)
