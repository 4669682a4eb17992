"""speech_map's word level: the word heard inside the sentence heard, shared by syllables when nothing better is
known, and taken from a piece's Timings (mapped from the piece's own text to the box's UTF-16 positions) when
they are; a screenshot of a multi-word sentence with its word marked."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from tests.ui.test_speech_map import snapshot
from voicegui.features.timings import Timing, Timings
from voicegui.ui.speech_map import map_pieces, progress
from voicegui.ui.text_panel import TextPanel


def test_the_word_heard_is_shared_by_syllables_within_the_sentence():
    text = "Cat elephant. Dog."
    mapped = map_pieces(text, [text])
    words = {}
    for played in (0.1, 0.6, 1.5, 1.9):  # the piece is 2 s: 12 of its 16 characters (1.5 s) are the first sentence
        snap = snapshot(audio_received_s=2.0, fetch_done=True, played_s=played)
        p = progress(snap, mapped, [16], [2.0])
        words[played] = text[p.word[0]:p.word[1]]
        assert p.sentence[0] <= p.word[0] < p.word[1] <= p.sentence[1] and not p.timed
    # "Cat" is 1 syllable of the sentence's 4 ("elephant" 3): its first quarter, 0.375 s.
    assert words == {0.1: "Cat", 0.6: "elephant.", 1.5: "Dog.", 1.9: "Dog."}


def test_timings_of_each_piece_drive_the_marks_in_utf16():
    text = "😀 Hi there.  Next   piece now."
    pieces = ["😀 Hi there.", "Next piece now."]  # the split normalises whitespace: the piece is not a substring
    mapped = map_pieces(text, pieces)
    second = Timings(pieces[1], (Timing(0.2, 0.5, 0, 4, "Next", "server"), Timing(0.6, 0.9, 5, 10, "piece", "server"),
                                 Timing(1.0, 1.2, 11, 15, "now.", "server")),
                     (Timing(0.2, 1.2, 0, 15, pieces[1], "server"),))
    snap = snapshot(piece_count=2, piece_starts_s=(0.0, 2.0), audio_received_s=4.0, fetch_done=True, played_s=2.7,
                    piece_playing=1)
    p = progress(snap, mapped, [10, 13], [2.0, 2.0], [None, second])
    utf16 = text.encode("utf-16-le")

    def shown(span: tuple[int, int]) -> str:
        return utf16[2 * span[0]:2 * span[1]].decode("utf-16-le")

    assert p.timed and shown(p.word) == "piece" and shown(p.sentence) == "Next   piece now."
    before = progress(snapshot(piece_count=2, piece_starts_s=(0.0, 2.0), audio_received_s=4.0, fetch_done=True,
                               played_s=2.1, piece_playing=1), mapped, [10, 13], [2.0, 2.0], [None, second])
    assert before.timed and before.word is None  # its first word has not started yet


def test_screenshot_of_a_word_marked_in_its_sentence(qtbot, artifacts_dir):
    panel = TextPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 140)
    text = "The first sentence is done. Now the second one is being read aloud, word by word."
    panel.text_edit.setPlainText(text)
    panel.show()
    start = text.index("Now")
    panel.highlight((start, len(text)))
    word = text.index("read")
    panel.highlight_word((word, word + 4))
    QApplication.processEvents()
    selections = panel.text_edit.extraSelections()
    assert [(s.cursor.selectionStart(), s.cursor.selectionEnd()) for s in selections] == [(start, len(text)),
                                                                                          (word, word + 4)]
    assert panel.grab().save(str(artifacts_dir / "read-along-word.png"))
    # the word's tint is stronger than the sentence's: the two marks differ in colour
    assert selections[0].format.background().color() != selections[1].format.background().color()
    panel.highlight(None)
    assert panel.text_edit.extraSelections() == [] and panel.highlighted_word is None
