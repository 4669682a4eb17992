"""Does the program that holds an X11 selection answer? Asked on an X connection of our own, with a deadline.

Qt's xcb clipboard reads another program's selection on the GUI thread and waits up to 5 s for each of its
requests (15 s for a text, measured on Xvfb with a stopped owner): a busy or hung editor holding PRIMARY froze
the window that long, and the `voicegui speak --selection` that asked timed out blaming the window.
`probe()` first asks the owner for its TARGETS (the cheapest conversion every owner must answer) on a
separate connection through libxcb and gives up after `timeout_s`; the window reads through Qt only an owner
that answered.

The sentences a selection or clipboard text is refused with (`silent_owner`, `text_problem`) are here too,
Qt-free, so the window (ui/instance.py) and the command without a window (cli/read_selection.py) say the same.

Threads: any (the connection is its own and closed before `probe` returns); the window calls it on the GUI
thread, which it blocks at most `timeout_s`. A late answer goes nowhere: closing the connection destroys the
window it was addressed to.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import select
import time
from functools import cache
from typing import Any

from voicegui.limits import MAX_TEXT_CHARS

SELECTION_NOTIFY = 31  # X11 event code; a SendEvent sets bit 0x80 on top of it
WINDOW_CLASS_INPUT_ONLY = 2
PROBE_PROPERTY = b"VOICEGUI_SELECTION_PROBE"


class Owner(enum.Enum):
    NONE = "no program holds it"
    ANSWERED = "its owner answered"
    SILENT = "its owner did not answer in time"


class X11Error(Exception):
    """The X server cannot be asked (no libxcb, no connection): one sentence saying which."""


class _Cookie(ctypes.Structure):  # xcb_*_cookie_t, passed and returned by value
    _fields_ = [("sequence", ctypes.c_uint)]


class _ValueReply(ctypes.Structure):  # xcb_intern_atom_reply_t and xcb_get_selection_owner_reply_t alike
    _fields_ = [("response_type", ctypes.c_uint8), ("pad0", ctypes.c_uint8), ("sequence", ctypes.c_uint16),
                ("length", ctypes.c_uint32), ("value", ctypes.c_uint32)]


class _ScreenIterator(ctypes.Structure):  # xcb_screen_iterator_t; an xcb_screen_t starts with its root window
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint32)), ("rem", ctypes.c_int), ("index", ctypes.c_int)]


@cache
def _libs() -> tuple[Any, Any]:
    """(libxcb, libc) with the signatures used here; X11Error if libxcb is missing."""
    try:
        xcb = ctypes.CDLL("libxcb.so.1")
    except OSError as exc:
        raise X11Error(f"libxcb cannot be loaded ({exc})") from None
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.free.argtypes, libc.free.restype = [ctypes.c_void_p], None
    conn, u8, u16, u32, i16 = ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int16
    signatures = {
        "xcb_connect": ([ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)], conn),
        "xcb_connection_has_error": ([conn], ctypes.c_int),
        "xcb_disconnect": ([conn], None),
        "xcb_flush": ([conn], ctypes.c_int),
        "xcb_get_file_descriptor": ([conn], ctypes.c_int),
        "xcb_get_setup": ([conn], ctypes.c_void_p),
        "xcb_setup_roots_iterator": ([ctypes.c_void_p], _ScreenIterator),
        "xcb_generate_id": ([conn], u32),
        "xcb_intern_atom": ([conn, u8, u16, ctypes.c_char_p], _Cookie),
        "xcb_intern_atom_reply": ([conn, _Cookie, ctypes.c_void_p], ctypes.c_void_p),
        "xcb_get_selection_owner": ([conn, u32], _Cookie),
        "xcb_get_selection_owner_reply": ([conn, _Cookie, ctypes.c_void_p], ctypes.c_void_p),
        "xcb_create_window": ([conn, u8, u32, u32, i16, i16, u16, u16, u16, u16, u32, u32, ctypes.c_void_p], _Cookie),
        "xcb_convert_selection": ([conn, u32, u32, u32, u32, u32], _Cookie),
        "xcb_poll_for_event": ([conn], ctypes.c_void_p),
    }
    for name, (argtypes, restype) in signatures.items():
        func = getattr(xcb, name)
        func.argtypes, func.restype = argtypes, restype
    return xcb, libc


def probe(selection: str, timeout_s: float) -> Owner:
    """Whether `selection` ("PRIMARY", "CLIPBOARD") has an owner on $DISPLAY and it answers within `timeout_s`."""
    xcb, libc = _libs()
    conn = xcb.xcb_connect(None, None)
    try:
        if xcb.xcb_connection_has_error(conn):
            raise X11Error("cannot connect to the X server that $DISPLAY names")

        def value(reply: int | None) -> int:
            if not reply:
                raise X11Error("the X server did not answer a request")
            try:
                return int(_ValueReply.from_address(reply).value)
            finally:
                libc.free(reply)

        def atom(name: bytes) -> int:
            return value(xcb.xcb_intern_atom_reply(conn, xcb.xcb_intern_atom(conn, 0, len(name), name), None))

        sel = atom(selection.encode())
        if value(xcb.xcb_get_selection_owner_reply(conn, xcb.xcb_get_selection_owner(conn, sel), None)) == 0:
            return Owner.NONE
        root = xcb.xcb_setup_roots_iterator(xcb.xcb_get_setup(conn)).data[0]
        window = xcb.xcb_generate_id(conn)
        xcb.xcb_create_window(conn, 0, window, root, 0, 0, 1, 1, 0, WINDOW_CLASS_INPUT_ONLY, 0, 0, None)
        xcb.xcb_convert_selection(conn, window, sel, atom(b"TARGETS"), atom(PROBE_PROPERTY), 0)
        xcb.xcb_flush(conn)
        return Owner.ANSWERED if _notified(xcb, libc, conn, timeout_s) else Owner.SILENT
    finally:
        xcb.xcb_disconnect(conn)


def _notified(xcb: Any, libc: Any, conn: int, timeout_s: float) -> bool:
    """Whether a SelectionNotify arrives on `conn` within `timeout_s` (other events and errors are dropped)."""
    fd = xcb.xcb_get_file_descriptor(conn)
    deadline = time.monotonic() + timeout_s
    while True:
        while event := xcb.xcb_poll_for_event(conn):
            kind = ctypes.c_uint8.from_address(event).value & 0x7F
            libc.free(event)
            if kind == SELECTION_NOTIFY:
                return True
        if xcb.xcb_connection_has_error(conn):
            raise X11Error("the X server closed the connection")
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        select.select([fd], [], [], left)


MAX_SPEAK_CHARS = MAX_TEXT_CHARS  # the text box's own limit
OWNER_ANSWER_S = 2.0  # how long a selection's owner may take to answer the probe


def silent_owner(what: str, selection: bool) -> str:
    """The sentence for an owner of `what` ('the selection', 'the clipboard') that did not answer the probe."""
    return (f"the program that holds {what} did not hand it over within {OWNER_ANSWER_S:g} s (it may be busy or "
            f"hung); {'select' if selection else 'copy'} the text again and retry")


def text_problem(text: str, what: str) -> str | None:
    """Why the text read from `what` is not spoken (empty, or over MAX_SPEAK_CHARS), or None."""
    if not text.strip():
        return f"nothing to speak: {what} holds no text"
    if len(text) > MAX_SPEAK_CHARS:
        return (f"{what} is {len(text)} characters long, over the window's limit of {MAX_SPEAK_CHARS}; speak a "
                "shorter part")
    return None
