"""`voicegui speak` with no provider options: the built-in offline voices, started for the run, played on the
PulseAudio null sink (tests/conftest.py). Every format must decode and play; success prints nothing extra."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.conftest import read_wav

REPO = Path(__file__).resolve().parents[2]
FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")


def speak(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The user's OpenAI key must not matter (nor be sent anywhere) when no --base-url is given.
    env["OPENAI_API_KEY"] = "sk-should-not-be-used"
    return subprocess.run([sys.executable, "-m", "voicegui", "speak", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def our_stderr(res: subprocess.CompletedProcess) -> str:
    """stderr without libasound's own diagnostics: on a loaded machine ALSA's C library itself writes
    "ALSA lib pcm.c:...: (snd_pcm_recover) underrun occurred" when PortAudio's device thread is late; that
    line is not voicegui's output (silencing it is output.py's business)."""
    return "".join(line for line in res.stderr.splitlines(keepends=True) if not line.startswith("ALSA lib "))


def speak_json(*args: str) -> tuple[subprocess.CompletedProcess, dict]:
    res = speak(*args, "--json")
    assert res.stdout.strip(), f"no JSON on stdout; rc={res.returncode}; stderr: {res.stderr}"
    return res, json.loads(res.stdout)


def test_speak_needs_no_provider_options():
    res, m = speak_json("Hello there.")
    assert res.returncode == 0, res.stderr
    assert m["completed"] and m["error"] is None
    assert m["requested_format"] == "pcm" and m["detected_format"] == "pcm"
    assert m["sample_rate"] == 24000
    assert m["audio_played_s"] > 0.3
    assert m["ttfa_ms"] is not None
    # --json prints exactly one JSON object and nothing else.
    assert res.stdout.count("\n") == 1 and our_stderr(res) == ""


def test_speak_prints_nothing_on_success():
    res = speak("Hello there.")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and our_stderr(res) == ""


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_plays_with_the_default_voice(fmt, tmp_path):
    out = tmp_path / "played.wav"
    res, m = speak_json("The quick brown fox.", "--format", fmt, "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert m["completed"] and m["error"] is None and m["format_warning"] is None
    assert m["detected_format"] == fmt
    assert m["audio_played_s"] > 0.3
    played = read_wav(out)
    assert len(played) > 0.3 * 24000
    assert np.abs(played.astype(np.int32)).max() > 1000  # speech reached the device, not silence


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_another_builtin_voice_by_id():
    res, m = speak_json("Hello.", "--voice", "espeak:en-us")
    assert res.returncode == 0, res.stderr
    assert m["completed"] and m["audio_played_s"] > 0.1


def test_unknown_builtin_voice_is_one_clear_line():
    res = speak("Hello.", "--voice", "no-such-voice")
    assert res.returncode == 1
    assert "no-such-voice" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(our_stderr(res).strip().splitlines()) == 1
