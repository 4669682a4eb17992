"""The window comes back as it was closed: geometry, splitter sizes, current tab, text and theme, from its own
window.json in $VOICEGUI_CONFIG_DIR (written atomically, bounded); a damaged file costs one log line and the
defaults, never the start. Real offscreen windows on the built-in test server.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.ui.conftest import _open_windows, close_window, until
from voicegui.limits import MAX_TEXT_CHARS
from voicegui.ui import theme, window_state

pytestmark = [pytest.mark.audio, pytest.mark.usefixtures("system_theme")]


async def reopen(server):
    """A new window as the app makes one: nothing set after construction (open_window sets the text)."""
    import asyncio

    from voicegui.ui.main_window import MainWindow

    win = MainWindow(builtin=server)
    _open_windows.append((win, asyncio.get_running_loop()))
    win.show()
    await until(lambda: win.voice.count() > 0, 5, "the built-in voice list")
    return win


async def test_geometry_splitters_tab_text_and_theme_survive_a_restart(window, server, config_dir):
    window.resize(760, 560)  # inside the offscreen screen (800x600): restoreGeometry keeps a window on it
    window.splitter.setSizes([300, 440])
    window.side_pane.setSizes([250, 200])
    window.tabs.setCurrentIndex(2)
    window.text_edit.setPlainText("Said before the restart. ✓")
    window.menu_actions.themes["dark"].trigger()
    await until(lambda: window.width() == 760, 3, "the resize")
    size, sizes, side = (window.width(), window.height()), window.splitter.sizes(), window.side_pane.sizes()
    assert size != (1280, 800)
    await close_window(window)
    saved = json.loads((config_dir / "window.json").read_text(encoding="utf-8"))
    assert saved["tab"] == 2 and saved["theme"] == "dark" and saved["splitter"] == sizes

    theme.controller().set_choice("system")  # what a fresh process starts with
    again = await reopen(server)
    try:
        assert (again.width(), again.height()) == size
        assert again.splitter.sizes() == sizes and again.side_pane.sizes() == side
        assert again.tabs.currentIndex() == 2
        assert again.text_edit.toPlainText() == "Said before the restart. ✓"
        assert theme.controller().choice() == "dark" and again.menu_actions.themes["dark"].isChecked()
    finally:
        await close_window(again)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe garbage", b"[1, 2]",
                                     b'{"splitter": "wide", "tab": true, "theme": "sepia", "text": 7}'])
async def test_a_damaged_file_gives_defaults_and_one_log_line(server, config_dir, caplog, content):
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "window.json").write_bytes(content)
    caplog.set_level(logging.WARNING, logger="voicegui.ui.window_state")
    win = await reopen(server)
    try:
        lines = [r for r in caplog.records if r.name == "voicegui.ui.window_state"]
        assert len(lines) == 1 and "window.json" in lines[0].getMessage(), [r.getMessage() for r in lines]
        assert (win.width(), win.height()) == (1280, 800) and win.tabs.currentIndex() == 0
        assert theme.controller().choice() == "system" and win.text_edit.toPlainText() == ""
    finally:
        await close_window(win)
    # and the next close writes a good one
    assert window_state.load(config_dir / "window.json").tab == 0


def test_an_oversized_file_is_not_read(tmp_path, caplog):
    path = tmp_path / "window.json"
    path.write_text(json.dumps({"tab": 3, "text": "x" * (window_state.MAX_FILE_BYTES + 1)}), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert window_state.load(path) == window_state.WindowState()
    assert "ignored" in caplog.text


def test_save_is_atomic_and_bounded(tmp_path):
    path = tmp_path / "sub" / "window.json"
    window_state.save(window_state.WindowState(tab=1, text="y" * (MAX_TEXT_CHARS + 500)), path)
    assert [p.name for p in path.parent.iterdir()] == ["window.json"]  # no temporary file left
    assert path.stat().st_size <= window_state.MAX_FILE_BYTES
    loaded = window_state.load(path)
    assert loaded.tab == 1 and len(loaded.text) == MAX_TEXT_CHARS


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "state" / "window.json"
    path.parent.mkdir()
    window_state.save(window_state.WindowState(tab=2), path)
    with pytest.raises(TypeError):
        window_state.save(window_state.WindowState(tab=1, splitter=[object()]), path)  # type: ignore[list-item]
    assert window_state.load(path).tab == 2
    assert [p.name for p in path.parent.iterdir()] == ["window.json"]


def test_close_to_tray_is_kept_and_a_wrong_value_is_the_default(tmp_path, caplog):
    path = tmp_path / "window.json"
    window_state.save(window_state.WindowState(close_to_tray=True), path)
    assert window_state.load(path).close_to_tray is True
    path.write_text('{"close_to_tray": "yes"}')
    assert window_state.load(path).close_to_tray is False
    assert "close_to_tray" in caplog.text


async def test_fixed_axes_survive_a_restart(window, server, config_dir):
    assert not window.plots.fixed_axes.isChecked()  # the default
    window.plots.fixed_axes.setChecked(True)
    await close_window(window)
    assert json.loads((config_dir / "window.json").read_text(encoding="utf-8"))["fixed_axes"] is True

    again = await reopen(server)
    try:
        assert again.plots.fixed_axes.isChecked(), "the plots' Fixed axes must come back after a restart"
        assert again.plots.buffer.fixed_axes, "and be in force in the buffer plot, not only ticked"
        again.plots.fixed_axes.setChecked(False)
    finally:
        await close_window(again)
    assert window_state.load(config_dir / "window.json").fixed_axes is False


def test_a_wrong_fixed_axes_value_is_the_default(tmp_path, caplog):
    path = tmp_path / "window.json"
    path.write_text('{"fixed_axes": 1}')
    assert window_state.load(path).fixed_axes is False
    assert "fixed_axes" in caplog.text
