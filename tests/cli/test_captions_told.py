"""`voicegui speak --captions` with a built-in voice: the server's own timings (asked of /dev/captioned_speech
after the Speak) are written when they describe the audio that played, and the file is estimated from the
pauses, and marked so, when they are of a synthesis of another length (a voice that is not deterministic)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import srt

from voicegui.cli import main as cli_main
from voicegui.features.timings import Timing, Timings, describes, sentences_from_words

RATE = 24000
TEXT = "One. Two."


def two_bursts() -> np.ndarray:
    """A tone 0.10-0.40 s and 0.90-1.20 s, silence elsewhere: two words with a clear pause, 1.3 s long."""
    t = np.arange(int(1.3 * RATE)) / RATE
    on = ((t >= 0.10) & (t < 0.40)) | ((t >= 0.90) & (t < 1.20))
    return (0.3 * np.sin(2 * np.pi * 300 * t) * on).astype(np.float32)


def told(audio_s: float) -> Timings:
    # the engine puts the second word 50 ms before its sound: an estimate from the pauses would not
    words = (Timing(0.1, 0.4, 0, 4, "One.", "engine"), Timing(0.85, 1.2, 5, 9, "Two.", "engine"))
    return Timings(TEXT, words, sentences_from_words(TEXT, words, "engine"), audio_s=audio_s)


def cues(path: Path) -> list[tuple[float, str]]:
    return [(round(s.start.total_seconds(), 3), s.content) for s in srt.parse(path.read_text(encoding="utf-8"))]


def test_the_servers_timings_are_written_when_they_describe_what_played(tmp_path: Path) -> None:
    played = two_bursts()
    assert cli_main._write_captions(tmp_path / "told.srt", TEXT, played, RATE, told(1.3))
    assert cues(tmp_path / "told.srt") == [(0.1, "One."), (0.85, "Two.")]


def test_timings_of_another_synthesis_are_not_used(tmp_path: Path) -> None:
    played = two_bursts()
    assert not describes(told(1.6), 1.3) and describes(told(1.32), 1.3)
    assert cli_main._write_captions(tmp_path / "other.srt", TEXT, played, RATE, told(1.6))
    written = cues(tmp_path / "other.srt")
    assert written[0][1] == "[Timings estimated by voicegui]"
    assert [c for c, _ in written[1:]] == [0.1, 0.9]  # where the sound starts after each pause
    no_length = dataclasses.replace(told(1.3), audio_s=None)
    assert cli_main._write_captions(tmp_path / "unknown.srt", TEXT, played, RATE, no_length)
    assert cues(tmp_path / "unknown.srt")[0][1] == "[Timings estimated by voicegui]"
