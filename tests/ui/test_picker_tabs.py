"""The Voice tab's voice browser (ui/voice_picker.py) in the Line-up and A/B tabs, on a real offscreen window
against the real built-in server's 133 voices: searching never ticks, unticks or changes a voice; voices are
grouped with readable names; ▶ previews through the window's player without choosing; the line-up keeps its
order, per-voice formats and remembered selection; an A/B side's combo and browser agree both ways."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import close_window, open_window, until
from tests.ui.test_voice_picker import click
from voicegui.features.lineup_selection import load_selection
from voicegui.ui.voice_picker import PLAY_COLUMN

pytestmark = pytest.mark.audio

MANY = 133


def order(panel) -> list[tuple[str, str | None]]:
    return [(e.voice, e.format) for e in panel.checked_entries()]


async def previewed(window, voice: str) -> None:
    await until(lambda: window.player.current is not None and window.player.current.kind == "preview"
                and window.player.current.request.voice == voice, 5, f"a preview of {voice}")
    await window.player.stop()


async def test_lineup_ticks_voices_in_the_browser_and_keeps_their_order(qtbot, real_window, real_builtin,
                                                                        artifacts_dir):
    window = real_window
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    picker = panel.picker
    assert picker.multiple and len(picker.all_ids()) == len(real_builtin.voices()) >= MANY
    us = picker.item_for("espeak:en-us")
    assert us.text(0) == "English (America)" and us.parent().parent().text(0).startswith("espeak-ng (")

    panel.filter.setText("french")  # a search ticks nothing and puts nothing in the line-up
    assert order(panel) == [] and picker.checked_ids() == []
    assert "espeak:fr-fr" in panel.visible_voices() and "heart" not in panel.visible_voices()
    picker.item_for("espeak:fr-fr").setCheckState(0, Qt.CheckState.Checked)  # the user ticks one
    panel.filter.setText("heart")
    picker.item_for("heart").setCheckState(0, Qt.CheckState.Checked)
    assert order(panel) == [("espeak:fr-fr", None), ("heart", None)], "in the order ticked"
    assert panel.voices.topLevelItem(1).text(0) == "Heart — hibari"  # readable in the line-up list too
    panel.filter.setText("zzz")  # ticked voices stay in view; still nothing else changes
    assert set(panel.visible_voices()) == {"heart", "espeak:fr-fr"}
    assert order(panel) == [("espeak:fr-fr", None), ("heart", None)]
    panel.filter.clear()

    panel.voices.topLevelItem(1).setText(1, "mp3")  # the Format cell's editor writes this
    panel.voices.setCurrentItem(panel.voices.topLevelItem(1))
    panel.up_button.click()
    assert order(panel) == [("heart", "mp3"), ("espeak:fr-fr", None)]
    assert load_selection(window.provider_label()).voices == ["heart", "espeak:fr-fr"]

    # ▶ in the browser: a preview through the window's player; nothing ticked or unticked
    click(picker.tree, picker.item_for("espeak:de"), PLAY_COLUMN)
    await previewed(window, "espeak:de")
    assert order(panel) == [("heart", "mp3"), ("espeak:fr-fr", None)]

    for w, h in ((1280, 800), (800, 600)):
        window.resize(w, h)
        await asyncio.sleep(0.3)
        assert window.grab().save(str(artifacts_dir / f"ui-lineup-picker-{w}x{h}.png"))

    # unticked in the line-up list: out of it and unticked in the browser; and the other way round
    panel.voices.topLevelItem(1).setCheckState(0, Qt.CheckState.Unchecked)
    assert order(panel) == [("heart", "mp3")] and picker.checked_ids() == ["heart"]
    picker.item_for("espeak:en-us").setCheckState(0, Qt.CheckState.Checked)
    picker.item_for("heart").setCheckState(0, Qt.CheckState.Unchecked)
    assert order(panel) == [("espeak:en-us", None)]


async def test_lineup_selection_comes_back_in_the_browser_after_a_restart(qtbot, real_builtin):
    window = await open_window(real_builtin)
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_checked(["espeak:en-gb", "heart"], {"heart": "opus"})
    panel.filter.setText("english")
    await close_window(window)

    window = await open_window(real_builtin)
    try:
        panel = window.lineup_panel
        window.tabs.setCurrentWidget(panel)
        assert order(panel) == [("espeak:en-gb", None), ("heart", "opus")]
        assert set(panel.picker.checked_ids()) == {"espeak:en-gb", "heart"}
        assert panel.filter.text() == "english" and "heart" in panel.visible_voices()  # ticked: in view
    finally:
        await close_window(window)


async def test_ab_sides_choose_in_the_browser(qtbot, real_window, real_builtin, artifacts_dir):
    window = real_window
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    a, b = panel.sides["A"], panel.sides["B"]
    assert len(a.picker.all_ids()) == len(b.picker.all_ids()) == len(real_builtin.voices()) >= MANY
    assert a.picker.chosen() == a.voice_id() and b.picker.chosen() == b.voice_id()
    before = a.voice_id()

    a.picker.filter.setText("zzz")  # a search never changes the side's voice
    assert a.voice_id() == before and a.picker.note.text().startswith('No voice matches "zzz".')
    a.picker.filter.setText("french")
    assert a.voice_id() == before
    click(a.picker.tree, a.picker.item_for("espeak:fr-fr"))  # a click picks
    assert a.voice_id() == "espeak:fr-fr" and a.voice.currentText() == "French (France) — espeak-ng"
    assert b.voice_id() != "espeak:fr-fr", "only that side changed"
    panel.set_side("B", "heart", "mp3")  # the combo (or set_side) marks it in the browser
    assert b.picker.chosen() == "heart"

    click(b.picker.tree, b.picker.item_for("espeak:de"), PLAY_COLUMN)  # ▶ previews, does not pick
    await previewed(window, "espeak:de")
    assert b.voice_id() == "heart"

    for w, h in ((1280, 800), (800, 600)):
        window.resize(w, h)
        await asyncio.sleep(0.3)
        assert window.grab().save(str(artifacts_dir / f"ui-ab-picker-{w}x{h}.png"))


async def test_lineup_and_ab_fit_the_width_of_a_small_window(qtbot, real_window):
    """At 800x600 the tabs are ~370 px wide: the A/B sides and the line-up's browser and list go one above the
    other and the tab scrolls, instead of cutting combos and buttons off at the right."""
    from PySide6.QtWidgets import QScrollArea

    window = real_window
    panels = {"line-up": window.lineup_panel, "A/B": window.ab_panel}
    for size in ((1280, 800), (800, 600)):
        window.resize(*size)
        for name, panel in panels.items():
            window.tabs.setCurrentWidget(panel)
            await asyncio.sleep(0.2)
            scroll = panel.findChild(QScrollArea)
            assert scroll is not None, f"{name}: a short window scrolls the tab"
            assert scroll.widget().width() <= scroll.viewport().width(), \
                f"{name} at {size}: the content is wider than the tab, its right side is cut off"
        a, b = window.ab_panel.sides["A"], window.ab_panel.sides["B"]
        picker, order = window.lineup_panel.picker, window.lineup_panel.voices
        side_by_side = size == (1280, 800)
        assert (a.y() == b.y()) is side_by_side, f"the A/B sides side by side only where they fit ({size})"
        assert (picker.y() == order.y()) is side_by_side


async def test_space_in_an_ab_browser_previews_and_does_not_switch(qtbot, real_window):
    """Space previews the voice under the cursor in every browser (as on the Voice tab); in the A/B tab it also
    switches sides, which must not win inside a browser's list."""
    from PySide6.QtTest import QTest

    window = real_window
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    tree = panel.sides["A"].picker.tree
    asked: list[str] = []
    panel.sides["A"].picker.preview_requested.connect(asked.append)
    window.activateWindow()
    tree.setCurrentItem(panel.sides["A"].picker.item_for("heart"))
    tree.setFocus()
    await until(lambda: window.isActiveWindow() and tree.hasFocus(), 3, "focus in the A side's browser")
    QTest.keyClick(tree, Qt.Key.Key_Space)
    await previewed(window, "heart")
    assert asked == ["heart"] and panel.plays == [], "Space in the list previews; it does not switch A/B"


async def test_ticking_a_group_puts_its_voices_in_the_lineup_at_once(qtbot, real_window, monkeypatch):
    """espeak-ng's group box ticks its 131 voices: they join the line-up in the browser's order, and the
    selection file is written once, not once per voice (that took ~1 s of a frozen window)."""
    import voicegui.ui.lineup_panel as lineup_module

    window = real_window
    panel = window.lineup_panel
    window.tabs.setCurrentWidget(panel)
    writes: list[list[str]] = []
    real_save = lineup_module.save_selection
    monkeypatch.setattr(lineup_module, "save_selection",
                        lambda provider, selection: (writes.append(selection.voices), real_save(provider, selection)))
    espeak = panel.picker.item_for("espeak:en-us").parent().parent()
    espeak.setCheckState(0, Qt.CheckState.Checked)
    await asyncio.sleep(0.05)
    members = [v for v in panel.picker.all_ids() if v.startswith("espeak:")]
    assert len(members) > 100 and [v for v, _f in order(panel)] == members
    assert writes == [members], "one write for the whole group"
    assert load_selection(window.provider_label()).voices == members
    espeak.setCheckState(0, Qt.CheckState.Unchecked)
    assert order(panel) == [] and len(writes) == 2


@pytest.mark.usefixtures("system_theme")
async def test_ab_sides_follow_the_dark_theme(qtbot, real_window):
    """The A/B side boxes carry a style sheet (their frame); they kept the light palette for their combos,
    lists and buttons in a dark window (white boxes) until their sheet was set again."""
    window = real_window
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    window.menu_actions.themes["dark"].trigger()
    await asyncio.sleep(0.1)
    for side in panel.sides.values():
        view = side.picker.tree.viewport()
        painted = view.grab().toImage().pixelColor(view.width() - 3, view.height() - 3)  # an empty row
        assert painted.lightness() < 100, f"side {side.name}: its voice list is painted light in a dark window"
        assert side.voice.palette().color(side.voice.palette().ColorRole.Base).lightness() < 100
        # and each row's ▶ is drawn light on it (the style's play icon was black: invisible)
        tree = side.picker.tree
        row = tree.visualItemRect(side.picker.item_for(side.voice_id()))
        left, width = tree.header().sectionPosition(PLAY_COLUMN), tree.header().sectionSize(PLAY_COLUMN)
        image = view.grab().toImage()
        brightest = max(image.pixelColor(x, y).lightness() for x in range(left, left + width)
                        for y in range(row.top(), row.bottom()))
        assert brightest > 150, f"side {side.name}: the preview button cannot be seen in the dark"
    window.menu_actions.themes["light"].trigger()
    await asyncio.sleep(0.1)
    view = panel.sides["A"].picker.tree.viewport()
    assert view.grab().toImage().pixelColor(view.width() - 3, view.height() - 3).lightness() > 200
