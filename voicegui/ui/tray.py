"""The tray icon (where the desktop has a system tray): Speak clipboard, Stop, Show/Hide window, "Close to
tray" and Quit; while the window is hidden, a Speak's error is shown as a desktop notification.

Threads: GUI thread only. Speak clipboard and Stop go through ui/instance.WindowCommands, i.e. the window's
own Speak and Stop slots, so the tray plays nothing itself.

"Close to tray" (off by default) is remembered in window.json through the window (MainWindow.close_to_tray,
saved at close). With it on, closing the window hides it instead (an event filter on the
window, so MainWindow's own close handling is untouched); Quit closes it for real.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QAction, QClipboard, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from voicegui.ui.instance import WindowCommands
from voicegui.ui.status import outcome

log = logging.getLogger(__name__)


class Tray(QObject):
    """The tray icon of `window` (the MainWindow); `commands` is the window's WindowCommands."""

    def __init__(self, window: Any, commands: WindowCommands, icon: QIcon) -> None:
        super().__init__(window)
        self.window, self.commands = window, commands
        self.quitting = False
        self.last_notice: str | None = None  # the last notification shown (for tests and the log)
        self.icon = QSystemTrayIcon(icon, self)
        self.icon.setToolTip("voicegui")
        menu = QMenu()
        self.menu = menu
        self.speak_clipboard = menu.addAction("Speak &clipboard")
        self.speak_clipboard.triggered.connect(self._speak_clipboard)
        self.stop = menu.addAction("&Stop")
        self.stop.triggered.connect(lambda: window.stop())
        self.toggle = menu.addAction("&Hide window")
        self.toggle.triggered.connect(self.toggle_window)
        menu.addSeparator()
        self.close_to_tray: QAction = menu.addAction("Close to &tray")
        self.close_to_tray.setCheckable(True)
        # Remembered in window.json (ui/window_state.py) through the window, which saves it at close.
        self.close_to_tray.setChecked(bool(getattr(window, "close_to_tray", False)))
        self.close_to_tray.toggled.connect(lambda on: setattr(window, "close_to_tray", on))
        self.quit = menu.addAction("&Quit")
        self.quit.triggered.connect(self.quit_app)
        menu.aboutToShow.connect(self._update_toggle)
        self.icon.setContextMenu(menu)
        self.icon.activated.connect(self._on_activated)
        window.installEventFilter(self)
        window.player.on_finished(self._on_finished)

    def _speak_clipboard(self) -> None:
        reply = self.commands.speak_clipboard(QClipboard.Mode.Clipboard)
        if not reply.ok:
            self.notify(reply.message)

    def _update_toggle(self) -> None:
        self.toggle.setText("&Hide window" if self.window.isVisible() else "&Show window")

    def toggle_window(self) -> None:
        if self.window.isVisible():
            self.window.hide()
        else:
            self.commands.show_window()

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:  # a left click
            self.toggle_window()

    def quit_app(self) -> None:
        self.quitting = True
        self.window.close()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() is QEvent.Type.Close and self._closes_to_tray():
            event.ignore()
            self.toggle_window()  # visible: hides it
            return True
        return False

    def _closes_to_tray(self) -> bool:
        return self.close_to_tray.isChecked() and not self.quitting and not self.window.is_closing()

    def _on_finished(self, playback: Any) -> None:
        if self.window.isVisible() or playback is not self.window.player.current or playback.kind != "speak":
            return
        _status, problems = outcome(playback)
        if problems:
            self.notify(" ".join(problems))

    def notify(self, message: str) -> None:
        """A desktop notification from the tray (the window may be hidden: its banner would go unseen)."""
        log.info("tray notification: %s", message)
        self.last_notice = message
        self.icon.showMessage("voicegui", message, QSystemTrayIcon.MessageIcon.Warning)


def install_tray(window: Any, commands: WindowCommands, icon: QIcon) -> Tray | None:
    """The tray icon, shown, or None where the desktop has no system tray (then nothing changes)."""
    if not QSystemTrayIcon.isSystemTrayAvailable():
        log.info("no system tray: voicegui runs without its tray icon")
        return None
    tray = Tray(window, commands, icon)
    tray.icon.show()
    return tray
