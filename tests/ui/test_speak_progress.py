"""A long text's progress in the window: 'Piece x of y · elapsed / total' and the sentence being heard highlighted.

A real offscreen window speaks a 10,000-character text (three requests of <= 4096 characters) through the
built-in server (replay engine: each request is the 1.5 s test clip) onto the PulseAudio null sink; the test
samples what the window shows while it plays.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.ui.conftest import CLIP_SECONDS, until
from tests.ui.test_main_window import click
from voicegui.text import split_for_request

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # the piece shown within 250 ms of the one heard

LONG_TEXT = " ".join(f"Sentence {i} is about item {i}." + (" It has a second part." if i % 3 else "")
                     for i in range(260))
LIMIT = 4096  # the window's split (ui/speak_options.MAX_INPUT_CHARS)


def piece_spans(text: str) -> list[tuple[int, int]]:
    """Where each request's text lies in the box (the test text has single spaces: pieces are substrings)."""
    spans, pos = [], 0
    for piece in split_for_request(text, LIMIT):
        start = text.index(piece, pos)
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    return spans


async def sample_while_playing(window, stop_in_piece: int | None = None, on_sample=None):
    """(progress line, highlighted span, scrollbar value, highlight in view, played clock) every 30 ms while the
    Speak plays; `stop_in_piece`: return once that piece is highlighted; `on_sample(sample)` after each."""
    panel = window.text_panel
    samples = []
    playback = window.playbacks[-1]
    while not playback.done.is_set():
        text = panel.progress.text() if not panel.progress.isHidden() else ""
        span = panel.highlighted
        in_view = span is not None and panel._in_view(*span)
        sample = (text, span, panel.text_edit.verticalScrollBar().value(), in_view,
                  playback.session.snapshot().played_s)
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        if stop_in_piece is not None and text.startswith(f"Piece {stop_in_piece} of") and span is not None:
            return samples
        await asyncio.sleep(0.03)
    return samples


async def start_long_speak(qtbot, window):
    window.text_edit.setPlainText(LONG_TEXT)
    assert len(LONG_TEXT) > 2 * LIMIT
    before = len(window.playbacks)
    click(qtbot, window.speak_button)
    await until(lambda: len(window.playbacks) > before, 5, "the Speak to start")
    return window.playbacks[-1]


async def test_progress_line_and_highlight_follow_the_pieces_to_the_end(qtbot, window, artifacts_dir):
    spans = piece_spans(LONG_TEXT)
    assert len(spans) == 3
    shot = artifacts_dir / "speak-progress.png"
    shot.unlink(missing_ok=True)

    def screenshot_in_piece_2(sample) -> None:
        if sample[0].startswith("Piece 2 of 3") and sample[1] is not None and not shot.exists():
            window.grab().save(str(shot))

    playback = await start_long_speak(qtbot, window)
    samples = await sample_while_playing(window, on_sample=screenshot_in_piece_2)
    assert playback.metrics is not None and playback.metrics.completed, playback.metrics
    assert shot.exists()

    lines = [s[0] for s in samples if s[0]]
    pieces = [int(m.group(1)) for m in (re.match(r"Piece (\d) of 3 · \d+:\d\d / ~?\d+:\d\d$", t) for t in lines) if m]
    assert len(pieces) == len(lines), lines  # every line has the promised form
    assert pieces == sorted(pieces) and set(pieces) == {1, 2, 3}, pieces  # through each piece, in order
    for text, _, _, _, played in samples:
        if text:
            # The piece named is the one heard on the played clock (each piece is the 1.5 s clip), give or take
            # the line's refresh period.
            heard_now = min(3, int(played // CLIP_SECONDS) + 1)
            heard_before = min(3, int(max(0.0, played - 0.25) // CLIP_SECONDS) + 1)
            assert heard_before <= int(text.split()[1]) <= heard_now, (text, played)
    highlighted = [(t, s) for t, s, _, _, _ in samples if s is not None]
    starts = [s[0] for _, s in highlighted]
    assert starts == sorted(starts) and len(set(starts)) > 3  # forward only, and it moved
    for text, (start, end) in highlighted:
        piece = int(text.split()[1]) - 1
        assert spans[piece][0] <= start < end <= spans[piece][1], (text, start, end)  # in the piece heard
        assert LONG_TEXT[start:end].startswith(("Sentence ", "It has"))
    # The text box scrolled with the highlight: it was in view whenever it was drawn.
    assert all(in_view for _, span, _, in_view, _ in samples if span is not None)
    assert max(value for _, _, value, _, _ in samples) > 0

    await until(lambda: window.text_panel.highlighted is None and window.text_panel.progress.isHidden(), 2,
                "the highlight and the progress line to go at the end")
    assert window.text_edit.extraSelections() == []
    assert window.text_edit.toPlainText() == LONG_TEXT  # marking is not editing


async def test_stop_clears_the_highlight_and_a_user_scroll_is_left_alone(qtbot, window):
    spans = piece_spans(LONG_TEXT)
    playback = await start_long_speak(qtbot, window)
    first = await sample_while_playing(window, stop_in_piece=1)
    assert first[-1][0].startswith("Piece 1 of 3 · ")
    tip = window.text_panel.progress.toolTip()
    assert "highlighted sentence is estimated" in tip and "~" in tip  # says what is measured and what is guessed
    start, end = first[-1][1]
    assert spans[0][0] <= start < end <= spans[0][1]
    await until(lambda: window.text_panel.progress.text().startswith("Piece 2 of 3"), 15, "the second piece")
    # The user scrolls back to the top, away from the sentence being heard: the box stays there.
    bar = window.text_edit.verticalScrollBar()
    assert bar.value() > 0
    bar.setValue(0)
    heard = window.text_panel.highlighted
    await until(lambda: window.text_panel.highlighted != heard, 5, "the highlight to move on")
    assert bar.value() == 0 and not window.text_panel._in_view(*window.text_panel.highlighted)
    click(qtbot, window.stop_button)
    await asyncio.wait_for(playback.done.wait(), 5)
    assert playback.metrics is not None and playback.metrics.stopped
    await until(lambda: window.text_panel.highlighted is None, 2, "the highlight to go at Stop")
    assert window.text_panel.progress.isHidden() and window.text_edit.extraSelections() == []
