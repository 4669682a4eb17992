"""SRT and WebVTT captions (features/captions.py), validated by maintained parsers: `srt` and `webvtt-py` (test
dependencies, see pyproject's dev extra)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pytest
import srt
import webvtt

from voicegui.features.captions import ESTIMATED_NOTE, MAX_CUE_WORDS, CaptionError, cues, write_captions
from voicegui.features.timings import Timing, Timings, estimate

SR = 24000


def spoken(text: str, words: int) -> Timings:
    """Timings estimated from a tone per word with pauses between: real alignment, known audio."""
    tone = (0.3 * np.sin(np.arange(int(0.3 * SR)) * 0.05)).astype(np.float32)
    gap = np.zeros(int(0.2 * SR), dtype=np.float32)
    return estimate(text, np.concatenate([np.concatenate([tone, gap]) for _ in range(words)]), SR)


TEXT = "One <two> & three. Four --> five!\n\nSix."


def test_srt_parses_and_says_estimated(tmp_path: Path) -> None:
    t = spoken(TEXT, 6)
    path = write_captions(t, tmp_path / "c.srt")
    subs = list(srt.parse(path.read_text(encoding="utf-8"), ignore_errors=False))
    assert subs[0].content == f"[{ESTIMATED_NOTE}]" and subs[0].start.total_seconds() == 0
    assert [s.content for s in subs[1:]] == ["One <two> & three.", "Four -> five!", "Six."]
    starts = [s.start.total_seconds() for s in subs[1:]]
    assert starts == pytest.approx([0.0, 1.5, 2.5], abs=0.011)
    assert all(s.end > s.start for s in subs)
    assert all(a.end <= b.start for a, b in zip(subs[1:], subs[2:], strict=False))


def test_vtt_parses_with_a_note(tmp_path: Path) -> None:
    t = spoken(TEXT, 6)
    path = write_captions(t, tmp_path / "c.vtt")
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("WEBVTT\n\nNOTE " + ESTIMATED_NOTE)
    captions = list(webvtt.read(str(path)))
    assert [html.unescape(c.text) for c in captions] == ["One <two> & three.", "Four -> five!", "Six."]
    assert [c.start for c in captions] == ["00:00:00.000", "00:00:01.500", "00:00:02.500"]
    assert all(c.start < c.end for c in captions)  # fixed-width stamps: text order is time order


def test_known_timings_carry_no_note(tmp_path: Path) -> None:
    w = Timing(0.2, 0.6, 0, 4, "Hey.", "engine")
    t = Timings("Hey.", (w,), (w,))
    vtt = write_captions(t, tmp_path / "k.vtt").read_text(encoding="utf-8")
    assert "NOTE" not in vtt
    subs = list(srt.parse(write_captions(t, tmp_path / "k.srt").read_text(encoding="utf-8")))
    assert [(s.content, s.start.total_seconds(), s.end.total_seconds()) for s in subs] == [("Hey.", 0.2, 0.6)]


def test_long_sentences_are_cut_into_cues() -> None:
    text = " ".join(f"w{i}" for i in range(MAX_CUE_WORDS * 2 + 3)) + "."
    t = spoken(text, MAX_CUE_WORDS * 2 + 3)
    parts = cues(t)
    assert [len(c[2].split()) for c in parts] == [MAX_CUE_WORDS, MAX_CUE_WORDS, 3]
    assert all(a[1] <= b[0] for a, b in zip(parts, parts[1:], strict=False))


def test_other_extension_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(CaptionError, match=r"\.srt or \.vtt.*name the file c\.srt"):
        write_captions(spoken("Hi.", 1), tmp_path / "c.txt")
    assert not (tmp_path / "c.txt").exists()
