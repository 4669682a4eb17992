"""speech_map: a long text's pieces and sentences found in the text box, and a snapshot mapped onto them.

The snapshots here are plain values of the session's Snapshot (what a session reports at some moment of a
three-piece Speak); the window test (test_speak_progress.py) runs the real thing.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QTextCursor, QTextDocument

from voicegui.stream.session import Snapshot
from voicegui.text import split_for_request
from voicegui.ui.speech_map import clock, map_pieces, piece_lengths, progress, progress_line


def snapshot(**fields) -> Snapshot:
    empty = np.zeros(0)
    base = dict(state="playing", started=0.0, sample_rate=24000, buffered_ms=0.0, prebuffer_ms=0.0,
                max_buffer_ms=10000.0, history_t=empty, history_ms=empty, play_started_s=0.1, underrun_t=empty,
                waveform=np.zeros(0, dtype=np.float32), frames_played=0, bytes_received=0, audio_received_s=0.0,
                underrun_episodes=0, metrics=None)
    base.update(fields)
    return Snapshot(**base)


def test_pieces_are_found_in_a_text_whose_whitespace_the_split_normalised():
    text = "First  sentence here.\n\nSecond one,\tstill going. Third!   Fourth?\n"
    pieces = split_for_request(text, 40)
    assert len(pieces) == 2 and "\n" not in "".join(pieces)
    mapped = map_pieces(text, pieces)
    assert mapped is not None
    spans = [text[s.start:s.end] for p in mapped for s in p.sentences]
    assert spans == ["First  sentence here.", "Second one,\tstill going.", "Third!", "Fourth?"]
    assert [p.chars for p in mapped] == [len("".join(p.split())) for p in pieces]


def test_spans_count_utf16_units_as_qt_does():
    text = "Smile 😀 please. Then 🎉 again."
    mapped = map_pieces(text, split_for_request(text))
    assert mapped is not None
    doc = QTextDocument(text)
    found = []
    for span in mapped[0].sentences:
        cursor = QTextCursor(doc)
        cursor.setPosition(span.start)
        cursor.setPosition(span.end, QTextCursor.MoveMode.KeepAnchor)
        found.append(cursor.selectedText())
    assert found == ["Smile 😀 please.", "Then 🎉 again."]


def test_an_edited_text_has_no_map():
    pieces = split_for_request("One sentence. Another one.")
    assert map_pieces("One sentence. Another one, edited.", pieces) is None
    assert map_pieces("", pieces) is None


def test_lengths_are_exact_once_known_and_estimated_from_characters_per_second_before():
    chars, fallback = [100, 100, 50], [7.0, 7.0, 3.5]
    # Nothing measured yet: the fallback, but at least what has arrived of the piece being fetched.
    lengths, estimated = piece_lengths(snapshot(piece_count=3, audio_received_s=8.0), chars, fallback)
    assert estimated and lengths == [8.0, 7.0, 3.5]
    # Piece 1 is 10 s for 100 characters: the others are estimated at 10 characters per second.
    lengths, estimated = piece_lengths(snapshot(piece_count=3, piece_starts_s=(0.0, 10.0), audio_received_s=11.0),
                                       chars, fallback)
    assert estimated and lengths == [10.0, 10.0, 5.0]
    # Every piece in: exact, no '~'.
    lengths, estimated = piece_lengths(snapshot(piece_count=3, piece_starts_s=(0.0, 10.0, 21.0),
                                                audio_received_s=26.5, fetch_done=True), chars, fallback)
    assert not estimated and lengths == [10.0, 11.0, 5.5]
    # A cut stream: fetching ended after two pieces, so the third will not play.
    lengths, estimated = piece_lengths(snapshot(piece_count=3, piece_starts_s=(0.0, 10.0), audio_received_s=12.0,
                                                fetch_done=True), chars, fallback)
    assert not estimated and lengths == [10.0, 2.0, 0.0]


def test_the_sentence_heard_is_shared_out_by_characters_within_the_piece_heard():
    text = "Aaaa aaaa aaaa aaaa. Bb. Cccc cccc cccc cccc. Dd."
    pieces = ["Aaaa aaaa aaaa aaaa. Bb.", "Cccc cccc cccc cccc. Dd."]
    mapped = map_pieces(text, pieces)
    chars = [20, 20]
    at = {}
    for played in (0.5, 3.5, 4.5, 6.0, 9.5):
        snap = snapshot(piece_count=2, piece_starts_s=(0.0, 4.0), audio_received_s=8.0, fetch_done=True,
                        played_s=played, piece_playing=0 if played < 4.0 else 1)
        p = progress(snap, mapped, chars, [1.0, 1.0])
        at[played] = text[p.sentence[0]:p.sentence[1]]
    # 17 of the piece's 20 characters (the first sentence) take 17/20 of its 4 s.
    assert at == {0.5: "Aaaa aaaa aaaa aaaa.", 3.5: "Bb.", 4.5: "Cccc cccc cccc cccc.", 6.0: "Cccc cccc cccc cccc.",
                  9.5: "Dd."}
    nothing = progress(snapshot(piece_count=2, piece_starts_s=(0.0,), audio_received_s=1.0), mapped, chars, [4, 4])
    assert nothing.sentence is None  # nothing heard yet (prebuffering)
    assert progress(snapshot(played_s=1.0, audio_received_s=2.0), None, [20], [4]).sentence is None  # no map


@pytest.mark.parametrize(("elapsed", "total", "estimated", "pieces", "line"), [
    (41.9, 125.0, True, 3, "Piece 2 of 3 · 0:41 / ~2:05"),
    (41.9, 125.0, False, 3, "Piece 2 of 3 · 0:41 / 2:05"),
    (3.0, 3725.0, False, 1, "0:03 / 1:02:05"),
])
def test_progress_line(elapsed, total, estimated, pieces, line):
    from voicegui.ui.speech_map import Progress

    assert progress_line(Progress(piece=1 if pieces > 1 else 0, pieces=pieces, elapsed_s=elapsed, total_s=total,
                                  estimated=estimated, sentence=None)) == line
    assert clock(-1) == "0:00"
