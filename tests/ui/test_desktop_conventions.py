"""Desktop conventions on a real offscreen window (built-in test server, null sink): the menu bar and its
window-wide shortcuts (also from inside the Text box), the shortcut list generated from the actual actions,
About, a visible focus ring on every Tab stop, and the light/dark theme; screenshots in test-artifacts/.
"""

from __future__ import annotations

import asyncio
import platform

import pytest
from PySide6.QtCore import QPoint, QRect, Qt, qVersion
from PySide6.QtGui import QAction, QColor, QImage, QKeySequence, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from tests.ui.conftest import until
from voicegui import app_dirs
from voicegui.ui import menus, theme
from voicegui.ui.focus_ring import MARGIN

pytestmark = [pytest.mark.audio, pytest.mark.usefixtures("system_theme")]


async def focus_text(window) -> None:
    window.activateWindow()
    window.text_edit.setFocus()
    await until(lambda: window.isActiveWindow() and window.text_edit.hasFocus(), 3, "the Text box to have focus")


def key(widget: QWidget, sequence: str) -> None:
    """Type a key combination ("Ctrl+2") into `widget`, as a user would."""
    combo = QKeySequence(sequence)[0]
    QTest.keyClick(widget, combo.key(), combo.keyboardModifiers())


async def test_menu_bar_lists_the_commands(window):
    bar = window.menuBar()
    titles = [a.text() for a in bar.actions()]
    assert titles == ["&File", "&View", "&Help"]
    entries = {a.text(): a for menu in bar.actions() for a in menu.menu().actions() if a.text()}
    for wanted in ("&Speak", "S&top", "Save last &audio as WAV…", "&Export line-up report…", "&Quit",
                   "&Voice", "Pl&ayback", "&History", "&Line-up", "A/&B", "Switch A/B si&de",
                   "&Keyboard shortcuts", "&About voicegui"):
        assert wanted in entries, (wanted, sorted(entries))
    assert entries["&Quit"].shortcut() == QKeySequence("Ctrl+Q")
    themes = [a.text() for a in entries["T&heme"].menu().actions()]
    assert themes == ["&Follow the system", "&Light", "&Dark"]


async def test_shortcuts_work_while_typing_in_the_text_box(window):
    await focus_text(window)
    text = window.text_edit.toPlainText()
    key(window.text_edit, "Ctrl+2")
    assert window.tabs.currentIndex() == 1
    key(window.text_edit, "Ctrl+5")
    assert window.tabs.currentWidget() is window.ab_panel
    key(window.text_edit, "Ctrl+1")
    assert window.tabs.currentIndex() == 0
    key(window.text_edit, "Ctrl+B")  # A/B from the Text box, the A/B tab not even shown
    await until(lambda: window.player.current is not None and window.player.current.kind == "ab", 5,
                "Ctrl+B to play an A/B side")
    key(window.text_edit, "Esc")
    await asyncio.wait_for(window.player.current.done.wait(), 5)
    key(window.text_edit, "Ctrl+Return")
    await until(lambda: window.is_speaking(), 5, "Ctrl+Return to speak")
    key(window.text_edit, "Esc")
    await asyncio.wait_for(window.playback.done.wait(), 5)
    assert window.text_edit.toPlainText() == text, "no shortcut may type into the text"


async def test_ctrl_b_also_works_inside_the_ab_tab(window):
    """The A/B tab had its own Ctrl+B; two in reach make Qt run neither (ambiguous shortcut)."""
    window.tabs.setCurrentWidget(window.ab_panel)
    await focus_text(window)
    window.ab_panel.setFocus()
    await until(lambda: window.ab_panel.hasFocus(), 3, "the A/B panel to have focus")
    key(window.ab_panel, "Ctrl+B")
    await until(lambda: window.player.current is not None and window.player.current.kind == "ab", 5,
                "Ctrl+B to play an A/B side")
    await window.player.stop()


async def test_ctrl_q_closes_the_window(window):
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    await focus_text(window)
    key(window.text_edit, "Ctrl+Q")
    await asyncio.wait_for(closed.wait(), 10)
    assert not window.isVisible()


async def test_shortcut_list_is_generated_from_the_actions(window, artifacts_dir):
    await focus_text(window)
    key(window.text_edit, "F1")
    await until(lambda: isinstance(QApplication.activeModalWidget() or _dialog(window), menus.ShortcutsDialog), 3,
                "the shortcuts dialog")
    dialog = _dialog(window)
    rows = dict(dialog.rows())
    for action in window.findChildren(QAction):
        for seq in action.shortcuts():
            listed = [k for k in rows if seq.toString(QKeySequence.SequenceFormat.NativeText) in k.split(", ")]
            assert listed, f"{action.text()} ({seq.toString()}) is missing from the shortcut list"
    assert rows["Ctrl+Q"] == "Quit" and rows["Esc"] == "Stop" and rows["Ctrl+B"] == "Switch A/B side"
    assert "(no description)" not in rows.values()
    assert dialog.grab().save(str(artifacts_dir / "ui-shortcuts.png"))
    dialog.close()
    # A key added later shows up without anyone editing a list: the dialog cannot drift.
    extra = QAction("Something new", window)
    extra.setShortcut(QKeySequence("Ctrl+Shift+N"))
    window.addAction(extra)
    assert ("Ctrl+Shift+N", "Something new") in menus.shortcut_rows(window)


def _dialog(window) -> menus.ShortcutsDialog | None:
    found = [d for d in window.findChildren(menus.ShortcutsDialog) if d.isVisible()]
    return found[-1] if found else None


async def test_about_names_versions_licence_and_where_files_live(window):
    window.menu_actions.about.trigger()
    box = next(b for b in window.findChildren(QWidget) if b.windowTitle() == "About voicegui" and b.isVisible())
    text = menus.about_text()
    assert box.text() == text
    for fact in (f"voicegui {menus.voicegui_version}", f"Python: {platform.python_version()}", f"Qt: {qVersion()}",
                 "PortAudio: PortAudio V19", "FFmpeg: ", "Licence: Apache-2.0",
                 f"Settings: {app_dirs.config_dir()}", f"History: {app_dirs.cache_dir()}"):
        assert fact in text, (fact, text)
    assert "unknown" not in text
    box.close()


def ring_pixels(image: QImage, band: QRect, colour: QColor) -> int:
    """Pixels of `colour` on the 2-px frame along the inside of `band` (window coordinates)."""
    want = colour.rgb()
    count = 0
    for x in range(max(band.left(), 0), min(band.right(), image.width() - 1) + 1):
        for y in (band.top(), band.top() + 1, band.bottom(), band.bottom() - 1):
            if 0 <= y < image.height() and image.pixel(x, y) == want:
                count += 1
    for y in range(max(band.top(), 0), min(band.bottom(), image.height() - 1) + 1):
        for x in (band.left(), band.left() + 1, band.right(), band.right() - 1):
            if 0 <= x < image.width() and image.pixel(x, y) == want:
                count += 1
    return count


async def tab_through(window, on_stop) -> list[QWidget]:
    """Press Tab from the Text box until the focus comes back to it; on_stop(widget) at each stop."""
    await focus_text(window)
    stops: list[QWidget] = []
    for _ in range(80):
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        await asyncio.sleep(0.02)
        widget = QApplication.focusWidget()
        if widget is window.text_edit or widget in stops:
            break
        stops.append(widget)
        await on_stop(widget)
    return stops


async def test_every_tab_stop_shows_a_focus_ring(window, artifacts_dir):
    missing: list[str] = []

    async def check(widget: QWidget) -> None:
        image = window.grab().toImage()
        rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        parent = widget.parentWidget()
        # just outside the widget, but never outside its parent (which would clip it)
        band = rect.adjusted(-MARGIN, -MARGIN, MARGIN - 1, MARGIN - 1).intersected(
            QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
        colour = widget.palette().color(QPalette.ColorRole.Highlight)
        perimeter = 2 * (band.width() + band.height())
        if ring_pixels(image, band, colour) < perimeter:  # two rows/columns per side: a whole ring is 2x this
            missing.append(f"{type(widget).__name__} {widget.objectName() or widget.accessibleName()}")

    stops = await tab_through(window, check)
    assert len(stops) >= 8, [type(w).__name__ for w in stops]
    assert not missing, f"no visible focus on {missing}"
    assert window.focus_ring.target() is QApplication.focusWidget()
    QApplication.focusWidget().clearFocus()  # nothing has the focus: no ring is left behind
    await asyncio.sleep(0.02)
    assert window.focus_ring.target() is None and not window.focus_ring.ring_visible()


async def test_focus_ring_screenshot(window, artifacts_dir):
    await focus_text(window)
    for _ in range(3):  # the Text box, the waveform, the buffer plot
        QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    await asyncio.sleep(0.05)
    assert window.focus_ring.target() is window.plots.buffer
    assert window.grab().save(str(artifacts_dir / "ui-focus-ring.png"))


def is_dark(colour: QColor) -> bool:
    return colour.lightness() < 100


async def test_dark_theme_from_the_view_menu_applies_to_the_whole_window(window, artifacts_dir):
    ctl = theme.controller()
    assert ctl.scheme() == "light" and theme.system_scheme() == "light"  # offscreen reports no scheme
    seen: list[str] = []
    ctl.changed.connect(seen.append)
    window.resize(1280, 800)
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-theme-light.png"))
    light_centre = window.grab().toImage().pixelColor(window.width() // 2, window.height() - 5)

    window.menu_actions.themes["dark"].trigger()
    await asyncio.sleep(0.1)
    assert seen == ["dark"] and ctl.is_dark()
    for widget in (window, window.text_edit, window.tabs, window.provider_panel, window.history_panel.table):
        assert is_dark(widget.palette().color(QPalette.ColorRole.Window)), widget
    assert is_dark(window.text_edit.palette().color(QPalette.ColorRole.Base))
    assert not is_dark(window.text_edit.palette().color(QPalette.ColorRole.Text))
    # what is painted, not only what the palette says: the status bar at the bottom is dark now
    image = window.grab().toImage()
    assert is_dark(image.pixelColor(window.width() // 2, window.height() - 5)) and not is_dark(light_centre)
    window.show_error("A message in the dark.")
    await asyncio.sleep(0.05)
    assert "#4a1f1c" in window.banner.styleSheet()
    assert window.grab().save(str(artifacts_dir / "ui-theme-dark.png"))
    window.resize(800, 600)
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-theme-dark-800x600.png"))
    window.menu_actions.themes["light"].trigger()
    await asyncio.sleep(0.1)
    assert not is_dark(window.palette().color(QPalette.ColorRole.Window)) and seen == ["dark", "light"]
    assert "#fdecea" in window.banner.styleSheet()
    assert window.grab().save(str(artifacts_dir / "ui-theme-light-800x600.png"))
    window.menu_actions.themes["system"].trigger()
    assert ctl.choice() == "system" and ctl.scheme() == "light" and window.menu_actions.themes["system"].isChecked()


def test_theme_rejects_an_unknown_choice(qapp):
    with pytest.raises(ValueError, match="system, light, dark"):
        theme.controller().set_choice("sepia")


async def test_help_says_how_to_speak_from_anywhere(window):
    """Issue 19: the app's own dialog says what the README says about binding `voicegui speak --selection`."""
    window.menu_actions.anywhere.trigger()
    box = next(b for b in window.findChildren(QWidget) if b.windowTitle() == "Speak from anywhere" and b.isVisible())
    text = box.text()
    for fact in ("voicegui speak --selection", "voicegui speak --clipboard", "voicegui stop", "GNOME", "KDE",
                 "xbindkeys", "Wayland", "wl-paste --primary"):
        assert fact in text, fact
    box.close()
