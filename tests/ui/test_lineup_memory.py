"""Line-up tab: the voice filter, and the ticked voices (order, formats) and filter remembered across a restart
of the window. Real window offscreen, real built-in (replay) server, real config file."""

from __future__ import annotations

import asyncio
import json

from PySide6.QtCore import Qt

from tests.ui.conftest import close_window, open_window
from voicegui.features.lineup_selection import selection_path


def checked(panel) -> list[tuple[str, str | None]]:
    return [(e.voice, e.format) for e in panel.checked_entries()]


async def test_ticked_voices_formats_and_filter_survive_a_restart(qtbot, server):
    win = await open_window(server)
    panel = win.lineup_panel
    win.tabs.setCurrentWidget(panel)  # fills the list from the provider
    panel.set_checked(["shimmer", "alloy"], {"alloy": "mp3"})
    # the user ticks one more by hand in the voice browser and types a search
    panel.picker.item_for("echo").setCheckState(0, Qt.CheckState.Checked)
    panel.filter.setText("sh")
    assert checked(panel) == [("shimmer", None), ("alloy", "mp3"), ("echo", None)]
    await close_window(win)

    win = await open_window(server)  # a restart: a new window reading the same config directory
    panel = win.lineup_panel
    win.tabs.setCurrentWidget(panel)
    assert checked(panel) == [("shimmer", None), ("alloy", "mp3"), ("echo", None)]
    assert panel.filter.text() == "sh"
    await close_window(win)


async def test_filter_narrows_the_list_and_keeps_ticked_voices(qtbot, window, artifacts_dir):
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    everything = panel.visible_voices()
    assert len(everything) > 5
    panel.set_checked(["alloy"])
    panel.filter.setText("SH")  # case-insensitive, on the name and the id
    shown = panel.visible_voices()
    assert "alloy" in shown, "a ticked voice stays shown: it is part of the line-up"
    assert set(shown) - {"alloy"} == {v for v in everything if "sh" in v}
    for w, h in ((1280, 800), (800, 600)):
        window.resize(w, h)
        await asyncio.sleep(0.3)  # let the layouts settle before the grab
        assert window.grab().save(str(artifacts_dir / f"ui-lineup-filter-{w}x{h}.png"))
    panel.filter.setText("nothing matches this")
    assert panel.visible_voices() == ["alloy"]
    panel.filter.clear()
    assert panel.visible_voices() == everything


async def test_damaged_selection_file_opens_with_nothing_ticked_and_is_replaced(qtbot, server, caplog):
    selection_path().parent.mkdir(parents=True, exist_ok=True)
    selection_path().write_text("{\"providers\": {\"Built-in\": [")
    win = await open_window(server)
    panel = win.lineup_panel
    win.tabs.setCurrentWidget(panel)
    assert checked(panel) == [] and len(panel.visible_voices()) > 5
    assert "moved to" in caplog.text
    panel.set_checked(["nova"])
    providers = json.loads(selection_path().read_text())["providers"]
    assert [s["voices"] for s in providers.values()] == [["nova"]]
    await close_window(win)
