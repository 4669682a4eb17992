"""Timings from a Realtime transcript (features/transcript_timings.py) on hand-built timelines: the typed text is
what is timed, whatever the model's punctuation and case; a word sent as part of an earlier delta starts where
that delta arrived; the history keeps them with their label, and caption files say where they come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import srt
import webvtt

from voicegui.features.captions import ESTIMATED_NOTE, TRANSCRIPT_NOTE, write_captions
from voicegui.features.history import HistoryEntry, HistoryStore
from voicegui.features.timings import Timings
from voicegui.features.transcript_timings import SOURCE, TranscriptTimer, transcript_timings
from voicegui.stream.realtime import TranscriptTimeline
from voicegui.wavfile import wav_bytes

SR = 24000


def timeline(*responses: tuple[str, float, float, list[tuple[str, float]]]) -> TranscriptTimeline:
    """A timeline as fetch_realtime fills it: per response its sentence, audio span and (delta, arrival s)."""
    t = TranscriptTimeline()
    for said, start, end, deltas in responses:
        t.start(said, start)
        t.audio(end)
        for text, at in deltas:
            t.delta(text, at)
        t.finish()
    return t


def test_the_typed_text_is_timed_whatever_the_models_punctuation_and_case() -> None:
    text = "Hello,  world!\nIt's   fine."
    t = timeline(("Hello, world!", 0.0, 1.0, [("hello ", 0.1), ("WORLD", 0.5)]),
                 ("It's fine.", 1.0, 2.0, [("Its fine", 1.2)]))
    timings = transcript_timings(text, t)
    assert timings is not None
    assert [(text[w.char_start:w.char_end], w.start_s, w.source) for w in timings.words] == [
        ("Hello,", 0.1, SOURCE), ("world!", 0.5, SOURCE), ("It's", 1.0, "estimated"), ("fine.", 1.5, "estimated")]
    # The second sentence's one delta arrived 0.2 s into its 1 s of audio: no word of it can be placed from it.
    assert [(text[s.char_start:s.char_end], s.start_s, s.end_s) for s in timings.sentences] == [
        ("Hello,  world!", 0.0, 1.0), ("It's   fine.", 1.0, 2.0)]
    assert timings.words[-1].end_s == 2.0


def test_a_word_inside_an_earlier_delta_starts_where_that_delta_arrived() -> None:
    t = timeline(("Alpha beta gamma delta.", 0.0, 2.0, [("Alpha be", 0.2), ("ta gamma ", 0.9), ("delta.", 1.4)]))
    timings = transcript_timings("Alpha beta gamma delta.", t)
    assert timings is not None
    assert [(w.text, w.start_s) for w in timings.words] == [("Alpha", 0.2), ("beta", 0.2), ("gamma", 0.9),
                                                           ("delta.", 1.4)]


def test_positions_are_clamped_into_the_response_and_never_go_back() -> None:
    # Before its audio, past its end, and one earlier than the one before it.
    for deltas, expected in (([("One ", 0.5), ("two ", 1.8), ("three.", 2.5)], [1.0, 1.8, 2.0]),
                             ([("One ", 1.0), ("two ", 1.9), ("three.", 1.2)], [1.0, 1.9, 1.9])):
        timings = transcript_timings("One two three.", timeline(("One two three.", 1.0, 2.0, deltas)))
        assert timings is not None
        assert [w.start_s for w in timings.words] == expected
        assert {w.source for w in timings.words} == {SOURCE}


def test_a_sentence_whose_audio_has_not_arrived_has_no_timings_yet() -> None:
    t = TranscriptTimeline()
    assert transcript_timings("One. Two.", t) is None
    t.start("One.", 0.0)
    t.delta("One.", 0.0)
    assert transcript_timings("One. Two.", t) is None  # text, but no audio yet
    t.audio(0.4)
    t.finish()
    t.start("Two.", 0.4)
    timings = transcript_timings("One. Two.", t)
    assert timings is not None and [s.text for s in timings.sentences] == ["One."]


def test_kept_in_the_history_with_their_label_and_said_so_in_captions(tmp_path: Path) -> None:
    text = "One two three. Four five."
    t = timeline(("One two three.", 0.0, 1.0, [("One ", 0.1), ("two ", 0.4), ("three.", 0.7)]),
                 ("Four five.", 1.0, 1.6, [("Four five.", 1.0)]))
    timings = transcript_timings(text, t)
    assert timings is not None and timings.from_transcript and timings.estimated
    store = HistoryStore(tmp_path)
    entry = HistoryEntry(time=1.0, provider="openai", base_url="wss://127.0.0.1:1/v1", model="gpt-realtime-2.1-mini",
                         voice="marin", format="pcm", text=text, detected_format="pcm")
    eid = store.add(entry, wav_bytes(np.zeros(int(1.6 * SR), dtype=np.float32), SR))
    store.save_timings(eid, timings)
    kept = HistoryStore(tmp_path).timings(eid)
    assert kept == Timings(text, timings.words, timings.sentences)
    assert [w.source for w in kept.words] == [SOURCE] * 3 + ["estimated"] * 2

    subs = list(srt.parse(write_captions(kept, tmp_path / "c.srt").read_text(encoding="utf-8")))
    assert subs[0].content == f"[{ESTIMATED_NOTE}; {TRANSCRIPT_NOTE}]"
    assert TRANSCRIPT_NOTE == "Word times from the Realtime transcript"
    vtt = write_captions(kept, tmp_path / "c.vtt").read_text(encoding="utf-8")
    assert f"NOTE {TRANSCRIPT_NOTE}:" in vtt and f"NOTE {ESTIMATED_NOTE}:" in vtt
    assert [c.text for c in webvtt.read(str(tmp_path / "c.vtt"))] == ["One two three.", "Four five."]


def test_rebuilt_as_the_timeline_grows_it_equals_a_fresh_build() -> None:
    """The window rebuilds at every change with one TranscriptTimer, which keeps finished sentences: at every
    step its answer is the one built from scratch."""
    text = "One two three. Four five six seven. Eight."
    timer = TranscriptTimer(text)
    t = TranscriptTimeline()
    steps = 0
    for said, start, words in (("One two three.", 0.0, ["One ", "two ", "three."]),
                               ("Four five six seven.", 1.2, ["Four ", "five ", "six ", "seven."]),
                               ("Eight.", 2.8, ["Eight."])):
        t.start(said, start)
        for k, word in enumerate(words):
            t.audio(start + 0.4 * (k + 1))
            t.delta(word, start + 0.4 * k)
            assert timer.timings(t) == transcript_timings(text, t)
            steps += 1
        t.finish()
        assert timer.timings(t) == transcript_timings(text, t)
    final = timer.timings(t)
    assert final is not None and steps == 8
    assert [round(w.start_s, 6) for w in final.words] == [0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8]
    assert TranscriptTimer(text).timings(TranscriptTimeline()) is None
