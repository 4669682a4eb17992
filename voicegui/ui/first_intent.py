"""The user's first sign of meaning to Speak: the window imports what a Speak needs then, not at start-up.

The openai SDK (with pydantic, httpx2, httpcore2, anyio: ~270 modules) is ~12 MB of an idle window's resident
memory and ~0.23 s of imports in a worker thread (measured on these machines with the window's own modules
loaded). Imported at start-up it kept the idle window above 200 MB (issue 17); imported at the first Speak it
would add its time to that Speak. A user about to Speak types, clicks, scrolls or points at Speak first, usually
well over 0.2 s before the click, so the window imports it at the first of these (ui/app.py) and the Speak
finds it loaded; a Speak that comes with no warning at all (a Speak shortcut pressed at once, a request handed
over by another `voicegui` command) imports it itself, as `voicegui speak` does.

What counts as a sign: the text being edited; once `watch_input()` was called, also a key press, a mouse-button
press or a wheel turn in any of the application's windows (choosing a voice, opening a menu, a shortcut), the
pointer entering the Speak button, the keyboard focus reaching the Speak button. What does not: the window being
shown, activated, exposed or repainted, the text box getting the focus it has at start, the pointer passing
over the rest of the window (a window often opens under a resting pointer).

Threads: GUI thread only. The input watch is an application-wide event filter, so every event of the process
passes through Python while it is installed: the app installs it only once its start-up is done (the start-up's
thousands of layout, paint and timer events would pay for it; the text's edits are watched from the start
through its own signal), it removes itself at the first sign, and `stop()` removes it sooner (the app calls it
when anything starts playing, so a Speak's hundreds of events a second never pass through it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

log = logging.getLogger(__name__)

# Input anywhere in the application: the user is using it now.
INPUT_EVENTS = frozenset({QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick,
                          QEvent.Type.Wheel, QEvent.Type.TouchBegin, QEvent.Type.ShortcutOverride})
# On the Speak button only: about to press it.
POINTED_EVENTS = frozenset({QEvent.Type.Enter, QEvent.Type.HoverEnter, QEvent.Type.FocusIn})


class FirstIntent(QObject):
    """Calls `on_intent(reason)` once, at the first sign (see the module docstring), then stops watching."""

    def __init__(self, speak_button: QWidget, text_edit: QPlainTextEdit | QTextEdit,
                 on_intent: Callable[[str], object]) -> None:
        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("FirstIntent needs the QApplication to exist")
        super().__init__(app)
        self._app = app
        self._speak_button = speak_button
        self._text_edit = text_edit
        self._on_intent: Callable[[str], object] | None = on_intent
        self._input_watched = False
        text_edit.textChanged.connect(self._text_changed)

    @property
    def watching(self) -> bool:
        return self._on_intent is not None

    def watch_input(self) -> None:
        """Watch the application's input too (the event filter); nothing once stopped or already watching."""
        if self._on_intent is not None and not self._input_watched:
            self._input_watched = True
            self._app.installEventFilter(self)

    def stop(self) -> None:
        """Watch no more (nothing is called); safe to call any number of times."""
        if self._on_intent is not None:
            self._on_intent = None
            self._text_edit.textChanged.disconnect(self._text_changed)
            if self._input_watched:
                self._app.removeEventFilter(self)

    def _text_changed(self) -> None:
        self._fire("the text was edited")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in INPUT_EVENTS:
            self._fire(f"{kind.name} on {type(watched).__name__}")
        elif kind in POINTED_EVENTS and watched is self._speak_button:
            self._fire(f"{kind.name} on the Speak button")
        return False  # the event goes on as if nothing watched it

    def _fire(self, reason: str) -> None:
        on_intent = self._on_intent
        self.stop()
        if on_intent is not None:
            log.debug("first sign of intent: %s", reason)
            on_intent(reason)
