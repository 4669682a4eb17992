"""The text of X11's PRIMARY selection or of the clipboard, for a `voicegui speak --selection | --clipboard`
that no window took (issue 19, "Speak from anywhere"): the command reads it itself and speaks it as
`voicegui speak TEXT` would.

How: the owner is first asked on an X connection of our own with a deadline (ui/x11_selection, as the
window does before reading), so a hung editor costs OWNER_ANSWER_S, not Qt's 15 s; no owner means nothing is
selected, and Qt is not started at all. Only an owner that answered is read, through a QGuiApplication made
for this on the xcb platform and shut down before the text is handed on. Qt is imported here only, so a
plain `voicegui speak TEXT` stays free of it (tests/cli/test_startup.py).

Where it cannot read: Wayland gives the clipboard and the primary selection only to a client with a focused
window (the protocol sends wl_data_device.selection to a client about to get keyboard focus), and this command
has none: PySide6 6.11 on the wayland platform with no window reads '' without an error (tried on weston 10),
which cannot be told from an empty clipboard. So under Wayland without $DISPLAY it does not try: it says so and
names the window or wl-paste. With $DISPLAY (X11, or XWayland in a Wayland session) it reads through X. With
neither there is nothing to read from, and it says that. Every failure is a ReadError holding one sentence for
the user.

Threads: the main thread, before the command's asyncio loop starts; Qt's GUI thread is this thread for the
few milliseconds the QGuiApplication lives. Qt's own messages go to logging (debug), not to the terminal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from voicegui.ui import x11_selection

log = logging.getLogger(__name__)

SELECTION, CLIPBOARD = "selection", "clipboard"
_X11_NAMES = {SELECTION: "PRIMARY", CLIPBOARD: "CLIPBOARD"}
# Qt falls back to offscreen (which has no selection) rather than aborting the process when xcb cannot start.
QT_PLATFORMS = "xcb;offscreen"


class ReadError(Exception):
    """The selection or clipboard cannot be spoken: str() is one sentence naming the cause and what to do."""


def what(source: str) -> str:
    """'the selection' or 'the clipboard', as the window's messages name them."""
    return f"the {source}"


def read_text(source: str, env: Mapping[str, str] | None = None) -> str:
    """The text of `source` (SELECTION: X11's PRIMARY; CLIPBOARD) on this session's display, checked as the
    window checks a handed-over one (not empty, not over MAX_SPEAK_CHARS); ReadError otherwise."""
    env = os.environ if env is None else env
    name = what(source)
    if not env.get("DISPLAY"):
        if env.get("WAYLAND_DISPLAY"):
            paste = "wl-paste --primary" if source == SELECTION else "wl-paste"
            raise ReadError(f"Wayland hands {name} only to a focused window, and this command has none: keep the "
                            f"voicegui window open, or use `voicegui speak \"$({paste})\"`")
        raise ReadError(f"there is no X display or Wayland session to read {name} from ($DISPLAY and "
                        "$WAYLAND_DISPLAY are unset): run the command in your desktop session, or give the text "
                        "as `voicegui speak TEXT`")
    try:
        owner = x11_selection.probe(_X11_NAMES[source], x11_selection.OWNER_ANSWER_S)
    except x11_selection.X11Error as exc:
        raise ReadError(f"cannot read {name}: {exc} ($DISPLAY is {env['DISPLAY']!r}); run the command in "
                        "your desktop session") from None
    if owner is x11_selection.Owner.SILENT:
        raise ReadError(x11_selection.silent_owner(name, source == SELECTION))
    text = "" if owner is x11_selection.Owner.NONE else _read_through_qt(source)
    problem = x11_selection.text_problem(text, name)  # the window's checks and sentences
    if problem is not None:
        raise ReadError(problem)
    return text


def _read_through_qt(source: str) -> str:
    """The text Qt's xcb clipboard reads for `source`, from a QGuiApplication that lives only for this."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler
    from PySide6.QtGui import QClipboard, QGuiApplication

    def to_log(kind: QtMsgType, context: object, message: str) -> None:
        log.debug("Qt (%s): %s", kind.name, message)

    previous = qInstallMessageHandler(to_log)
    app = QGuiApplication(["voicegui", "-platform", QT_PLATFORMS])
    try:
        if QGuiApplication.platformName() != "xcb":
            raise ReadError(f"cannot read {what(source)}: Qt's xcb platform did not start (most likely a missing "
                            "libxcb-* library: `QT_DEBUG_PLUGINS=1 voicegui -vv speak --selection` names it)")
        mode = QClipboard.Mode.Selection if source == SELECTION else QClipboard.Mode.Clipboard
        return QGuiApplication.clipboard().text(mode)
    finally:
        app.shutdown()
        qInstallMessageHandler(previous)
