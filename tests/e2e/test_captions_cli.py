"""`voicegui speak --captions FILE`: captions of what the device played, on the null sink, through the built-in
espeak-ng voice, timed by the engine (its library's word events: not marked estimated); the cues start where the
played samples' sound starts (within 100 ms)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import srt
import webvtt

from tests.e2e.conftest import read_wav
from tests.e2e.test_builtin_speak import our_stderr, speak

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SR = 24000


def sound_onsets(samples: np.ndarray, quiet_s: float = 0.08) -> list[float]:
    """Where sound starts after at least `quiet_s` of silence (or at the start): measured on the samples."""
    loud = np.flatnonzero(np.abs(samples.astype(np.float32)) > 0.02 * 32768)
    onsets = [loud[0] / SR]
    for a, b in zip(loud, loud[1:], strict=False):
        if b - a > quiet_s * SR:
            onsets.append(b / SR)
    return onsets


@pytest.mark.audio
@pytest.mark.parametrize("ext", ["srt", "vtt"])
def test_captions_follow_the_played_audio(tmp_path: Path, ext: str) -> None:
    out, captions = tmp_path / "played.wav", tmp_path / f"c.{ext}"
    res = speak("One. Two. Three.", "--voice", "espeak:en-us", "--out", str(out), "--captions", str(captions))
    assert res.returncode == 0, res.stderr
    assert our_stderr(res) == ""
    truth = sound_onsets(read_wav(out))
    assert len(truth) == 3
    raw = captions.read_text(encoding="utf-8")
    assert "Timings estimated" not in raw  # the engine's own times, asked of the built-in server
    if ext == "srt":
        cues = [(s.start.total_seconds(), s.content) for s in srt.parse(raw, ignore_errors=False)]
    else:
        cues = [(c.start_in_seconds + int(c.start[-3:]) / 1000, c.text) for c in webvtt.from_string(raw)]
    assert [text for _, text in cues] == ["One.", "Two.", "Three."]
    for (start, _), onset in zip(cues, truth, strict=True):
        assert abs(start - onset) <= 0.100, (cues, truth)


def test_captions_need_a_caption_extension(tmp_path: Path) -> None:
    res = speak("Hi.", "--captions", str(tmp_path / "c.txt"))
    assert res.returncode == 2
    assert "--captions writes .srt or .vtt files, not 'c.txt'" in res.stderr
    assert not (tmp_path / "c.txt").exists()


@pytest.mark.audio
def test_no_captions_for_speech_cut_short(shaped, tmp_path: Path) -> None:
    from tests.e2e.conftest import speak as speak_to
    from voicegui.server.shaping import Shaping

    shaped.shaping = Shaping(cut_after_bytes=30000, write_bytes=1024)
    captions = tmp_path / "c.srt"
    res = speak_to(shaped, "--format", "pcm", "--captions", str(captions), text="One. Two. Three. Four. Five.")
    assert res.returncode == 1
    assert f"the captions were not written to {captions}: the speech did not play to its end" in res.stderr
    assert not captions.exists()
