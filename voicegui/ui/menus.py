"""The main window's menu bar and its window-wide shortcuts, the Keyboard shortcuts dialog and the About box.

Every command with a key is a QAction in the menu bar (File: Speak, Stop, Save last audio, Export line-up
report, Quit; View: one entry per tab, the theme; Help), so the key works anywhere in the window, also while
the cursor is in the Text box. The shortcuts dialog is generated from the window's QActions and QShortcuts
as they are at the moment it opens (shortcut_rows), so it cannot drift from what the keys do.

Threads: GUI thread only.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMessageBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from voicegui import __version__ as voicegui_version, app_dirs, crash
from voicegui.ui import theme

LICENCE = "Apache-2.0"
SPEAK_KEYS = ("Ctrl+Return", "Ctrl+Enter")  # the main Enter and the keypad's


@dataclass
class Commands:
    """What the menu entries do (the window's own methods)."""

    speak: Callable[[], None]
    stop: Callable[[], None]
    save_audio: Callable[[], None]
    export_report: Callable[[], None]
    quit: Callable[[], object]
    ab_switch: Callable[[], None]
    show_tab: Callable[[int], None]
    tab_titles: list[str] = field(default_factory=list)


@dataclass
class WindowActions:
    speak: QAction
    stop: QAction
    save_audio: QAction
    export_report: QAction
    quit: QAction
    ab_switch: QAction
    tabs: list[QAction]
    themes: dict[str, QAction]
    shortcuts: QAction
    about: QAction
    anywhere: QAction | None = None


def _action(parent: QWidget, text: str, slot: Callable[[], object], keys: tuple[str, ...] = (),
            tip: str = "") -> QAction:
    action = QAction(text, parent)
    if keys:
        action.setShortcuts([QKeySequence(k) for k in keys])
    if tip:
        action.setStatusTip(tip)
    # The window-wide context is the default; said here because the Text box must not swallow these keys.
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda _checked=False: slot())
    return action


def install_menus(window: QMainWindow, commands: Commands) -> WindowActions:
    """Build the menu bar of `window`; returns its actions (the window enables Speak/Stop as they apply)."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    speak = _action(window, "&Speak", commands.speak, SPEAK_KEYS, "Speak the text")
    stop = _action(window, "S&top", commands.stop, ("Esc",), "Stop whatever plays")
    save_audio = _action(window, "Save last &audio as WAV…", commands.save_audio, ("Ctrl+S",),
                         "Save the audio of the newest Speak in the history as a WAV file")
    export_report = _action(window, "&Export line-up report…", commands.export_report, ("Ctrl+E",),
                            "Write the last line-up's HTML report and CSV")
    quit_action = _action(window, "&Quit", commands.quit, ("Ctrl+Q",), "Stop playing, save and close voicegui")
    quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    file_menu.addActions([speak, stop])
    file_menu.addSeparator()
    file_menu.addActions([save_audio, export_report])
    file_menu.addSeparator()
    file_menu.addAction(quit_action)

    view_menu = bar.addMenu("&View")
    tabs = []
    for index, title in enumerate(commands.tab_titles):
        keys = (f"Ctrl+{index + 1}",) if index < 9 else ()
        tabs.append(_action(window, title, _show_tab(commands, index), keys, f"Show the {_plain(title)} tab"))
    view_menu.addActions(tabs)
    ab_switch = _action(window, "Switch A/B si&de", commands.ab_switch, ("Ctrl+B",),
                        "Play the other side of the A/B comparison")
    view_menu.addAction(ab_switch)
    view_menu.addSeparator()
    theme_menu = view_menu.addMenu("T&heme")
    group = QActionGroup(window)
    themes: dict[str, QAction] = {}
    ctl = theme.controller()
    for choice in theme.CHOICES:
        action = QAction(theme.LABELS[choice], group)
        action.setCheckable(True)
        action.setChecked(choice == ctl.choice())
        action.triggered.connect(lambda _checked=False, c=choice: ctl.set_choice(c))
        themes[choice] = action
        theme_menu.addAction(action)

    help_menu = bar.addMenu("&Help")
    shortcuts = _action(window, "&Keyboard shortcuts", lambda: show_shortcuts(window), ("F1",),
                        "Every shortcut of this window")
    about = _action(window, "&About voicegui", lambda: show_about(window))
    about.setMenuRole(QAction.MenuRole.AboutRole)
    anywhere = _action(window, "Speak from &anywhere…", lambda: show_speak_anywhere(window))
    help_menu.addActions([shortcuts, anywhere, about])
    return WindowActions(speak, stop, save_audio, export_report, quit_action, ab_switch, tabs, themes, shortcuts,
                         about, anywhere)


def _show_tab(commands: Commands, index: int) -> Callable[[], None]:
    return lambda: commands.show_tab(index)


def _plain(text: str) -> str:
    """A menu or button text without its mnemonic marks ("&&" stays a literal "&")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(keys, what they do) for every QAction and QShortcut of `window` that has a key, as they are now.

    A QShortcut says what it does in its whatsThis (or, failing that, the object name); one without either is
    listed by its key alone, so a forgotten description shows up in the dialog instead of hiding.
    """
    rows: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for action in window.findChildren(QAction):
        keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
        if keys and action.isVisible():
            row = (keys, _plain(action.text()))
            if row not in seen:
                seen.add(row)
                rows.append(row)
    for shortcut in window.findChildren(QShortcut):
        keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in shortcut.keys())
        if keys and shortcut.isEnabled():
            what = shortcut.whatsThis() or shortcut.objectName() or "(no description)"
            if shortcut.context() == Qt.ShortcutContext.WidgetWithChildrenShortcut:
                parent = shortcut.parent()
                name = parent.accessibleName() if isinstance(parent, QWidget) else ""
                what += f" (while {name or 'its panel'} has the focus)"
            row = (keys, what)
            if row not in seen:
                seen.add(row)
                rows.append(row)
    return rows


class ShortcutsDialog(QDialog):
    """A table of shortcut_rows(window)."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, what) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(keys))
            self.table.setItem(row, 1, QTableWidgetItem(what))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(520, 420)

    def rows(self) -> list[tuple[str, str]]:
        cells = [(self.table.item(r, 0), self.table.item(r, 1)) for r in range(self.table.rowCount())]
        return [(keys.text(), what.text()) for keys, what in cells if keys is not None and what is not None]


def show_shortcuts(window: QWidget) -> ShortcutsDialog:
    dialog = ShortcutsDialog(window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


def library_versions() -> dict[str, str]:
    """The versions the About box names; a library that cannot say is "unknown" (the box must still open)."""
    versions = {"voicegui": voicegui_version, "Python": platform.python_version(),
                "Qt": f"{qVersion()} (PySide6 {pyside_version})"}
    try:
        import sounddevice

        versions["PortAudio"] = str(sounddevice.get_portaudio_version()[1])
    except (ImportError, OSError) as exc:  # the library is missing or cannot load: About still opens
        versions["PortAudio"] = f"unknown ({exc})"
    try:
        import av

        versions["FFmpeg"] = f"{getattr(av, 'ffmpeg_version_info', 'unknown')} (PyAV {av.__version__})"
    except ImportError as exc:
        versions["FFmpeg"] = f"unknown ({exc})"
    return versions


def about_text() -> str:
    """The About box's text: versions, licence, and where settings, history and logs live."""
    lines = [f"voicegui {voicegui_version}: a player for OpenAI-compatible text-to-speech servers.", ""]
    lines += [f"{name}: {version}" for name, version in library_versions().items() if name != "voicegui"]
    lines += ["", f"Licence: {LICENCE}", "",
              f"Settings: {app_dirs.config_dir()}", f"History: {app_dirs.cache_dir()}",
              f"Log: {crash.log_file()}"]
    return "\n".join(lines)


def show_about(window: QWidget) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About voicegui", about_text(), QMessageBox.StandardButton.Close,
                      window)
    box.setTextFormat(Qt.TextFormat.PlainText)  # paths may hold anything: never rich text
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box


SPEAK_ANYWHERE_COMMANDS = """While this window runs, these commands hand their request to it and return at once:
  voicegui speak "some text"     speaks with this window's provider, voice and tuning
  voicegui speak --selection     the selected text (X11's primary selection)
  voicegui speak --clipboard     the clipboard
  voicegui stop                  stops what plays"""

SPEAK_ANYWHERE_HOW_TO_BIND = """\
Bind them to keys in your desktop (the key runs the command; this window does the speaking):
- GNOME: Settings > Keyboard > View and Customise Shortcuts > Custom Shortcuts > +: name "Speak selection",
  command: voicegui speak --selection, then press the key (e.g. Super+S).
- KDE Plasma: System Settings > Keyboard > Shortcuts > Add New > Command or Script:
  voicegui speak --selection, then assign the key.
- A plain X11 window manager: xbindkeys (~/.xbindkeysrc: "voicegui speak --selection" and on the next line
  Mod4 + s); i3: bindsym $mod+s exec voicegui speak --selection.
- Bind voicegui stop to another key the same way."""

SPEAK_ANYWHERE_WAYLAND = ("On Wayland without XWayland only a focused window may read the clipboard: keep this window "
                          "open and use voicegui speak --clipboard, or bind voicegui speak \"$(wl-paste)\" "
                          "(wl-paste --primary for the selection; Debian package wl-clipboard).")


def speak_anywhere_text(portal_keys: str | None) -> str:
    """The Help text: the keys the desktop's shortcut portal bound (ui/global_shortcut.py), if it did;
    otherwise how to bind the commands to keys by hand."""
    if portal_keys:
        keys = (f"Keys bound through your desktop's shortcut portal: {portal_keys}. They work while another "
                "program has the focus; change them in your desktop's keyboard settings.")
    else:
        keys = SPEAK_ANYWHERE_HOW_TO_BIND
    return "\n\n".join((SPEAK_ANYWHERE_COMMANDS, keys, SPEAK_ANYWHERE_WAYLAND))


def show_speak_anywhere(window: QWidget) -> QMessageBox:
    """Help > Speak from anywhere: the hand-off commands and the keys that run them (as the README says)."""
    portal = getattr(window, "global_shortcuts", None)  # set by ui/global_shortcut.install
    text = speak_anywhere_text(portal.trigger_text() if portal is not None else None)
    box = QMessageBox(QMessageBox.Icon.Information, "Speak from anywhere", text, QMessageBox.StandardButton.Close,
                      window)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box
