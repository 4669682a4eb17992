"""A damaged settings file or history index never stops the window or `voicegui lineup --history` from starting.

Real processes: `python -m voicegui -v` (offscreen Qt) and `python -m voicegui lineup --history` with the
built-in voices on the null sink, each with its own $VOICEGUI_CONFIG_DIR / $VOICEGUI_CACHE_DIR holding the
damaged file. The window shows the notice at start-up (logged as "shown to the user: ..." with -v).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GOOD = dict(time=1_700_000_000.0, provider="builtin", base_url="", model="builtin", voice="heart", format="pcm",
            id="1700000000000-aaaaaaaa")
WRONG_TYPES = [dict(GOOD, id="1700000000001-bbbbbbbb", time="yesterday"),
               dict(GOOD, id="1700000000002-cccccccc", ttfa_ms="fast"),
               dict(GOOD, id="1700000000003-dddddddd", extra=5)]


def env_for(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", VOICEGUI_CONFIG_DIR=str(tmp_path / "config"),
                VOICEGUI_CACHE_DIR=str(tmp_path / "cache"), OPENAI_API_KEY="",
                PYTHON_KEYRING_BACKEND="tests.ui.memory_keyring.MemoryKeyring", PYTHONPATH=str(REPO))


def damage(tmp_path: Path, settings: bytes | None, index: bytes | None) -> Path:
    (tmp_path / "config").mkdir()
    history = tmp_path / "cache" / "history"
    history.mkdir(parents=True)
    if settings is not None:
        (tmp_path / "config" / "settings.json").write_bytes(settings)
    if index is not None:
        (history / "index.jsonl").write_bytes(index)
    return history


def index_of(*entries: dict) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in entries)


@pytest.mark.parametrize("settings,index,notices", [
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage", b"\x00\xff\xfe\xfd binary\n\x89\x00garbage",
     ["The settings file was damaged (it is not UTF-8 text", "The history index had 2 damaged lines"]),
    (None, index_of(GOOD, *WRONG_TYPES), ["The history index had 3 damaged lines"]),
], ids=["binary-settings-and-index", "wrong-types-in-index"])
def test_window_starts_with_a_damaged_file_and_says_so(tmp_path, settings, index, notices):
    history = damage(tmp_path, settings, index)
    proc = subprocess.Popen([sys.executable, "-m", "voicegui", "-v"], env=env_for(tmp_path), cwd=REPO,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "voicegui ready" in line:
                break
        log = "".join(lines)
        assert "voicegui ready" in log, log
        shown = [line for line in lines if "shown to the user:" in line]
        for notice in notices:
            assert any(notice in line for line in shown), log
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 130
        rest = proc.stderr.read()
        assert "Traceback" not in log + rest, log + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Nothing lost: the damaged bytes are kept next to their files; the usable entry is still in the index.
    asides = sorted(p.read_bytes() for p in history.iterdir() if ".corrupt-" in p.name)
    assert asides == [index]
    if settings is not None:
        assert [p.read_bytes() for p in (tmp_path / "config").iterdir() if ".corrupt-" in p.name] == [settings]
    if GOOD["id"].encode() in index:
        assert GOOD["id"] in (history / "index.jsonl").read_text()


@pytest.mark.audio
def test_lineup_history_with_a_damaged_index_prints_one_line_and_works(tmp_path):
    history = damage(tmp_path, None, index_of(GOOD, WRONG_TYPES[0]) + b"\xff\xfe garbage\n")
    proc = subprocess.run([sys.executable, "-m", "voicegui", "lineup", "--voices", "heart", "--text", "Hi.",
                           "--history"], env=env_for(tmp_path), cwd=REPO, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "history index" in line]
    assert len(notices) == 1 and "2 damaged lines" in notices[0], proc.stderr
    from voicegui.features.history import HistoryStore

    store = HistoryStore(history)
    assert store.notice is None
    entries = store.entries()
    assert [e.id for e in entries][0] == GOOD["id"] and len(entries) == 2  # the old entry + the new voice
    assert entries[1].voice == "heart" and entries[1].audio_bytes > 0
