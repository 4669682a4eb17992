"""The voice browser (ui/voice_picker.py) in a real offscreen window against the real built-in server and its
real offline voices (133 with espeak-ng and piper on the development machines): searching never changes the
voice, picking is a click or Enter, voices are grouped with readable names, the play button asks for a
preview; and the provider controls that do nothing for a provider say so inline. Screenshots of the Voice tab
at the default size and at 800x600 go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import until
from voicegui.ui.voice_picker import PLAY_COLUMN, VoicePicker, browse_rows, voice_label


@pytest.fixture
def win(real_window):
    return real_window


def leaf_ids(pp) -> list[str]:
    return pp.picker.visible_ids()


def click(tree, item, column: int = 0) -> None:
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    x = tree.header().sectionPosition(column) + tree.header().sectionSize(column) // 2
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(x, rect.center().y()))


async def test_search_never_changes_the_voice(win, real_builtin):
    pp = win.provider_panel
    assert pp.voice_id() == real_builtin.default_voice == "heart"
    pp.voice_filter.setText("fr")  # used to select Afrikaans (espeak:af matches "fr" in its name)
    assert pp.voice_id() == "heart"
    shown = leaf_ids(pp)
    assert "espeak:fr-fr" in shown and "espeak:af" in shown
    assert "heart" in shown  # the chosen voice stays in view though "fr" is not in it
    assert "espeak:de" not in shown
    pp.voice_filter.setText("zzz")  # used to leave the first match selected, and Speak spoke with it
    assert pp.voice_id() == "heart"
    assert pp.picker.note.isVisible()
    assert pp.picker.note.text().startswith('No voice matches "zzz".')
    assert leaf_ids(pp) == ["heart"]
    assert win.speak_options().request.voice == "heart"
    pp.voice_filter.clear()
    assert pp.voice_id() == "heart" and len(leaf_ids(pp)) == len(real_builtin.voices())
    assert win.voice.count() == len(real_builtin.voices())  # the Voice box is never narrowed


async def test_picking_is_a_click_or_enter(win):
    pp = win.provider_panel
    tree = pp.picker.tree
    pp.voice_filter.setText("french")
    item = pp.picker.item_for("espeak:fr-ch")
    tree.setCurrentItem(item)  # moving onto a voice (arrow keys) does not pick it
    assert pp.voice_id() == "heart"
    click(tree, item)
    assert pp.voice_id() == "espeak:fr-ch"
    assert win.speak_options().request.voice == "espeak:fr-ch"
    tree.setCurrentItem(pp.picker.item_for("espeak:fr-be"))
    tree.setFocus()
    QTest.keyClick(tree, Qt.Key.Key_Down)  # on to the next voice: still nothing picked
    assert pp.voice_id() == "espeak:fr-ch"
    tree.setCurrentItem(pp.picker.item_for("espeak:fr-be"))
    QTest.keyClick(tree, Qt.Key.Key_Return)
    assert pp.voice_id() == "espeak:fr-be"
    pp.voice_filter.setText("german")  # the chosen voice stays marked and shown
    assert "espeak:fr-be" in leaf_ids(pp) and pp.voice_id() == "espeak:fr-be"
    # the Voice box and the browser agree both ways
    win.voice.setCurrentIndex(win.voice.findData("espeak:de"))
    assert pp.picker.chosen() == "espeak:de"


async def test_voices_grouped_by_engine_and_language_with_readable_names(win, real_builtin):
    pp = win.provider_panel
    tree = pp.picker.tree
    tops = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    engines = [t.rsplit(" (", 1)[0] for t in tops]
    assert engines[0] == "hibari" and "espeak-ng" in engines
    heart = pp.picker.item_for("heart")
    assert heart.text(0) == "Heart" and heart.parent().text(0) == "hibari (1)"
    us = pp.picker.item_for("espeak:en-us")
    assert us.text(0) == "English (America)"
    assert us.parent().text(0).startswith("English (") and us.parent().parent().text(0).startswith("espeak-ng (")
    assert pp.picker.item_for("espeak:af").parent().text(0).startswith("espeak-ng (")  # alone: no group
    labels = [pp.picker.item_for(v.id).text(0) for v in real_builtin.voices()]
    assert not any("(espeak-ng)" in label or "(hibari)" in label or "(heart)" in label for label in labels)
    assert "English (America)" in us.toolTip(0) and "espeak:en-us" in us.toolTip(0)
    assert tree.textElideMode() == Qt.TextElideMode.ElideMiddle
    # the Voice box says the engine once, not the name twice
    assert win.voice.itemText(win.voice.findData("heart")) == "Heart — hibari"
    assert dict(win.voice_choices())["espeak:en-us"] == "English (America) — espeak-ng"


async def test_play_button_previews_without_picking(win):
    pp = win.provider_panel
    asked: list[str] = []
    pp.preview_requested.connect(asked.append)
    pp.voice_filter.setText("joe")
    item = pp.picker.item_for("piper:joe") or pp.picker.item_for("espeak:en-gb")
    click(pp.picker.tree, item, PLAY_COLUMN)
    assert asked == [item.data(0, Qt.ItemDataRole.UserRole)]
    assert pp.voice_id() == "heart"
    pp.picker.tree.setCurrentItem(item)
    pp.picker.tree.setFocus()
    QTest.keyClick(pp.picker.tree, Qt.Key.Key_Space)  # the keyboard's preview
    assert len(asked) == 2 and pp.voice_id() == "heart"


async def test_builtin_says_the_model_and_instructions_do_nothing(win, real_builtin):
    pp = win.provider_panel
    assert not pp.model.isVisible()  # the built-in server routes by voice alone
    assert pp.model_note.isVisible() and "ignore the model" in pp.model_note.text()
    assert pp.model_id() == real_builtin.default_model  # still sent
    assert not pp.instructions.isVisible()  # a disabled box looked editable
    assert pp.instructions_note.isVisible() and "no instructions" in pp.instructions_note.text()
    assert pp.instructions_value() is None


async def test_custom_server_shows_the_model_and_no_openai_shutdown_notice(win, real_builtin):
    pp = win.provider_panel
    pp.set_provider("custom")
    win.base_url.setText(real_builtin.base_url)
    win.api_key.setText(real_builtin.token)
    pp._on_base_url_edited()  # as editingFinished does
    await until(lambda: "voices from" in pp.connection.text(), 10, "the custom server's lists")
    win.model.setCurrentText("tts-1")  # a Custom server may call its model tts-1: not OpenAI's
    assert not pp.warning.isVisible()
    assert pp.model.isVisible() and not pp.model_note.isVisible()
    assert not pp.instructions.isVisible()
    assert pp.instructions_note.isVisible() and pp.instructions_note.text().startswith("tts-1 takes no instructions")
    # the same voices through another provider are grouped alike
    assert pp.picker.item_for("espeak:en-us").parent().text(0).startswith("English (")


async def test_openai_still_shows_its_shutdown_notice(win):
    pp = win.provider_panel
    pp.set_provider("openai")
    pp.model.setCurrentText("tts-1")
    assert pp.warning.isVisible() and "tts-1" in pp.warning.text()
    pp.model.setCurrentText("gpt-4o-mini-tts")
    assert pp.instructions.isVisible() and not pp.instructions_note.isVisible()


async def test_screenshots_default_and_small(win, artifacts_dir: Path):
    win.tabs.setCurrentIndex(0)
    win.provider_panel.voice_filter.setText("english")
    for name, size in (("default", None), ("800x600", (800, 600))):
        if size:
            win.resize(*size)
        await asyncio.sleep(0.05)  # the resize is laid out on the loop
        path = artifacts_dir / f"voice-browser-{name}.png"
        assert win.grab().save(str(path))
        assert path.stat().st_size > 10_000
        # at 800x600 the browser still shows several rows
        assert win.provider_panel.picker.tree.height() > win.fontMetrics().lineSpacing() * 5


def test_multiple_mode_ticks_and_keeps_ticked_voices_in_view(qtbot):
    picker = VoicePicker(multiple=True)
    qtbot.addWidget(picker)
    picker.set_voices([("af_bella", "af_bella"), ("af_sky", "af_sky"), ("bm_george", "bm_george"),
                       ("jf_alpha", "jf_alpha")], checked=["bm_george"])
    picker.show()
    ticked: list[list[str]] = []
    picker.checked_changed.connect(lambda: ticked.append(picker.checked_ids()))
    assert picker.checked_ids() == ["bm_george"]
    picker.filter.setText("sky")
    assert picker.visible_ids() == ["af_sky", "bm_george"]  # the ticked one stays in view
    click(picker.tree, picker.item_for("af_sky"))
    picker.set_checked("af_sky", True)
    assert picker.checked_ids() == ["af_sky", "bm_george"] and ticked[-1] == ["af_sky", "bm_george"]
    assert picker.chosen() == ""  # nothing "chosen" in this mode


def test_grouping_of_remote_voice_lists():
    kokoro = browse_rows([("af_bella", "af_bella"), ("bm_george", "bm_george"), ("af_sky", "af_sky"),
                          ("jf_alpha", "jf_alpha")])
    assert [(r.id, r.label, r.group) for r in kokoro] == [
        ("af_bella", "Bella (female)", ("American English",)), ("af_sky", "Sky (female)", ("American English",)),
        ("bm_george", "George (male)", ("British English",)), ("jf_alpha", "Alpha (female)", ("Japanese",))]
    assert "af_bella" in kokoro[0].search  # the id is searchable
    locale = browse_rows([("en-US-JennyNeural", "Jenny"), ("de-DE-KatjaNeural", "Katja"), ("en-GB-Libby", "")])
    assert [r.group for r in locale] == [("en-US",), ("de-DE",), ("en-GB",)]
    flat = browse_rows([("alloy", "alloy"), ("nova", "Nova")])
    assert [(r.label, r.group) for r in flat] == [("alloy", ()), ("nova", ())]
    assert voice_label("heart", "Heart (hibari)") == "Heart — hibari"
    assert voice_label("af_bella", "Bella") == "Bella (af_bella)"


async def test_preview_plays_that_voice_through_the_window_without_choosing_it(win):
    """▶ on a row: the window's one player speaks a short sample in that voice; the chosen voice and History
    are untouched."""
    from voicegui.ui.voice_picker import PREVIEW_TEXT

    pp = win.provider_panel
    entries_before = len(win.history.entries())
    pp.voice_filter.setText("espeak:en-gb")
    item = pp.picker.item_for("espeak:en-gb")
    assert item is not None
    click(pp.picker.tree, item, PLAY_COLUMN)
    await until(lambda: win.player.session is not None and win.player.session.options.request.voice == "espeak:en-gb",
                20, "the preview to start")
    assert win.player.session.options.request.text == PREVIEW_TEXT
    await until(lambda: win.player.session.snapshot().frames_played > 0, 20, "the preview to be heard")
    assert pp.voice_id() == "heart"
    await until(lambda: not win.player.is_busy(), 20, "the preview to end")
    assert len(win.history.entries()) == entries_before
