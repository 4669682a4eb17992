"""End-to-end fixtures: the built-in server replaying a known clip on 127.0.0.1, and `voicegui speak` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from voicegui.server.benchclip import speech_like, write_clip

CLIP_SECONDS = 1.2
TOKEN = "e2e-token"


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("clip") / "clip.wav"
    write_clip(path, CLIP_SECONDS)
    return path, speech_like(CLIP_SECONDS)


@pytest.fixture(scope="session")
def server(clip):
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread

    with ServerThread(ReplayEngine(clip[0]), token=TOKEN) as srv:
        yield srv


@pytest.fixture
def shaped(server):
    """The server with default shaping restored after the test."""
    from voicegui.server.shaping import Shaping

    yield server
    server.shaping = Shaping()


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def speak(server, *extra: str, text: str = "Hello there.", api_key: str = TOKEN, timeout: float = 60):
    cmd = [sys.executable, "-m", "voicegui", "speak", text, "--base-url", server.base_url,
           "--api-key", api_key, "--model", "tts-1", "--voice", "alloy", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def speak_json(server, *extra: str, **kw) -> tuple[subprocess.CompletedProcess, dict]:
    res = speak(server, "--json", *extra, **kw)
    assert res.stdout.strip(), f"no JSON on stdout; stderr: {res.stderr}"
    return res, json.loads(res.stdout)
