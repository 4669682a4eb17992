"""A/B tab, blind test: both sides fetched once, hidden behind randomised "Voice 1/2", the toggle switching at
the same audio time with no further request, a vote kept and the names revealed; screenshots at 1280x800 and
800x600, blind and revealed. Real window offscreen, real built-in (replay) server, real audio on the null
sink."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.ui.conftest import until
from tests.ui.test_main_window import click
from voicegui.features.votes import load_votes

pytestmark = pytest.mark.audio

NAMES = ("alloy", "echo")


def visible_texts(window) -> str:
    panel = window.ab_panel
    return " | ".join([panel.now.text(), panel.status.text(), panel.blind_result.text(),
                       window.statusBar().currentMessage()])


async def heard(panel, count: int, seconds: float) -> None:
    await until(lambda: len(panel.plays) == count and panel.current is not None
                and not panel.current.playback.done.is_set()
                and panel.current.session.snapshot().frames_played > 24000 * seconds, 10,
                f"play {count} to be heard for {seconds} s")


async def shoot(window, artifacts_dir, name: str) -> None:
    for w, h in ((1280, 800), (800, 600)):
        window.resize(w, h)
        await until(lambda w=w: window.width() == w, 3, "the resize")
        await asyncio.sleep(0.3)  # let the layouts settle before the grab
        assert window.grab().save(str(artifacts_dir / f"ui-ab-{name}-{w}x{h}.png"))
        verdict = window.ab_panel.blind_result  # the blind test's buttons and verdict stay in view
        assert verdict.visibleRegion().boundingRect().height() == verdict.height(), f"{name} at {w}x{h}"


async def test_blind_ab_hides_switches_at_the_same_time_votes_and_reveals(qtbot, window, server, artifacts_dir):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo", "mp3")
    first_record = len(server.records)
    history_rows = window.history_panel.table.rowCount()

    test = await panel.start_blind_test(random.Random(7))
    assert test is not None
    assert sorted((test.contender(s).side, test.contender(s).label) for s in "12") == [
        ("A", "alloy / pcm"), ("B", "echo / mp3")]
    records = server.records[first_record:]
    assert sorted((r.voice, r.format) for r in records) == [("alloy", "pcm"), ("echo", "mp3")]

    click(qtbot, panel.toggle_button)  # Voice 1 first
    await heard(panel, 1, 0.6)
    assert not any(n in visible_texts(window) for n in NAMES), visible_texts(window)
    await shoot(window, artifacts_dir, "blind")
    click(qtbot, panel.toggle_button)  # Voice 2 at the same audio time
    await heard(panel, 2, 0.05)
    first, second = panel.plays
    assert (first.side, second.side) == ("1", "2") and first.blind and second.blind
    assert first.metrics is not None and first.metrics.stopped
    reached = first.offset_s + first.metrics.audio_played_s
    assert first.offset_s == 0.0
    assert 0.6 <= second.offset_s <= reached + 1e-3, "the other voice continues where this one was, not at 0 s"
    click(qtbot, panel.toggle_button)  # and back: Voice 1 continues where Voice 2 was
    await heard(panel, 3, 0.05)
    assert panel.plays[2].side == "1" and panel.plays[2].offset_s >= second.offset_s
    assert len(server.records) == first_record + 2, "switching asks the server nothing"
    assert not any(n in visible_texts(window) for n in NAMES)

    winner = test.contender("2").label
    click(qtbot, panel.vote_buttons["2"])
    (vote,) = load_votes()
    assert vote.winner == winner and vote.blind and vote.matched
    assert f"{winner} preferred over" in panel.blind_result.text()
    assert "Voice 1 was side" in panel.blind_result.text() and "LUFS" in panel.blind_result.text()
    await shoot(window, artifacts_dir, "revealed")
    click(qtbot, panel.stop_button)
    await until(lambda: not panel.is_playing(), 5, "the blind play to stop")
    # blind plays are not in the history (it would name them); only the window's own Speaks are
    assert window.history_panel.table.rowCount() == history_rows


async def test_blind_test_of_one_voice_twice_is_refused_in_one_sentence(qtbot, window):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "alloy")
    assert await panel.start_blind_test() is None
    assert window.banner.isVisible() and "same voice and format" in window.banner.text()
    assert not panel.vote_buttons["1"].isEnabled()


async def test_blind_test_of_a_text_longer_than_one_request_is_refused(qtbot, window, server):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo")
    window.text_edit.setPlainText("A sentence that is repeated to make a long text. " * 100)
    first_record = len(server.records)
    assert await panel.start_blind_test() is None
    assert "one request's worth of text" in window.banner.text() and "shorten" in window.banner.text()
    assert len(server.records) == first_record  # nothing was fetched


async def test_with_names_shown_switching_also_continues_at_the_same_time(qtbot, window, server):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo")
    panel.hide_names.setChecked(False)
    test = await panel.start_blind_test(random.Random(2))
    assert test is not None and test.revealed
    assert "Voice 1 was side" in panel.blind_result.text()
    click(qtbot, panel.toggle_button)
    await heard(panel, 1, 0.5)
    assert test.contender("1").label in panel.now.text()  # the name is shown while it plays
    click(qtbot, panel.toggle_button)
    await heard(panel, 2, 0.05)
    assert panel.plays[1].offset_s >= 0.5 and test.contender("2").label in panel.now.text()
    click(qtbot, panel.vote_buttons["same"])
    (vote,) = load_votes()
    assert vote.choice == "same" and not vote.blind  # a sighted vote is kept as one
    click(qtbot, panel.stop_button)
    await until(lambda: not panel.is_playing(), 5, "the play to stop")


async def test_changing_a_side_ends_the_blind_test(qtbot, window):
    panel = window.ab_panel
    window.tabs.setCurrentWidget(panel)
    panel.set_side("A", "alloy")
    panel.set_side("B", "echo")
    assert await panel.start_blind_test() is not None
    assert panel.vote_buttons["same"].isEnabled()
    panel.set_side("B", "nova")
    assert panel.blind is None and not panel.vote_buttons["same"].isEnabled()
    assert "start a new blind test" in panel.blind_result.text()


async def test_a_long_voice_label_shows_its_first_letters(qtbot, window):
    """At 1280x800 the side boxes are ~200 px wide: an editable combo scrolled to the end of a long label
    showed "...itain) (espeak:en-gb)" without its first letters."""
    panel = window.ab_panel
    window.resize(1280, 800)
    window.tabs.setCurrentWidget(panel)
    label = "English (Great Britain, Received Pronunciation) (espeak:en-gb-x-rp)"
    side = panel.sides["A"]
    side.set_voices([("espeak:en-gb-x-rp", label), ("alloy", "alloy")], "espeak:en-gb-x-rp")
    assert side.voice.currentText() == label
    assert side.voice.fontMetrics().horizontalAdvance(label) > side.voice.lineEdit().width(), "the label must not fit"
    assert side.voice.lineEdit().cursorPosition() == 0, "the start of the label is what shows"
    panel.set_side("A", "alloy")
    panel.set_side("A", "espeak:en-gb-x-rp")
    assert side.voice.lineEdit().cursorPosition() == 0
