"""Smoke test of the PyInstaller one-folder build (dist/voicegui, made by `make dist`).

It checks what only the frozen build can get wrong: that the window starts headless from the bundle and logs
its "voicegui ready" line, that the bundle's CLI speaks with the built-in offline voice (hibari's model data
and onnxruntime were collected) on the PulseAudio null sink started by tests/conftest.py, and that it plays
through the PortAudio library inside the bundle, not the system's.

Skipped, with the reason, when dist/voicegui is missing and VOICEGUI_REQUIRE_BUNDLE is unset; with that
variable set (CI after `make dist`) a missing bundle fails.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE_DIR = REPO / "dist" / "voicegui"
BUNDLE_EXE = BUNDLE_DIR / "voicegui"
READY_LINE = "voicegui ready"
# Generous upper bounds for a loaded 2-core machine; the tests wait for events, these only stop a hang.
READY_TIMEOUT_S = 90
SPEAK_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def bundle() -> Path:
    if not BUNDLE_EXE.is_file():
        if os.environ.get("VOICEGUI_REQUIRE_BUNDLE"):
            pytest.fail(f"VOICEGUI_REQUIRE_BUNDLE is set but {BUNDLE_EXE} does not exist: run `make dist` first")
        pytest.skip(f"no PyInstaller bundle at {BUNDLE_DIR.relative_to(REPO)} (build it with `make dist`; "
                    "set VOICEGUI_REQUIRE_BUNDLE=1 to make this a failure)")
    return BUNDLE_EXE


@pytest.fixture
def bundle_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment (PULSE_SERVER, QT_QPA_PLATFORM) with a throw-away home for settings."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    # The user's real key must never matter to the built-in voice.
    env["OPENAI_API_KEY"] = "sk-should-not-be-used"
    return env


def _read_lines(stream, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def test_bundled_window_starts_headless_and_logs_ready(bundle: Path, bundle_env: dict[str, str]) -> None:
    proc = subprocess.Popen([str(bundle)], env=bundle_env, cwd=bundle.parent, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    # A reader thread, so waiting for the line can give up at a deadline instead of blocking on readline().
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    ready = False
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while not ready and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:  # stderr closed: the app exited before it was ready
                break
            seen.append(line)
            ready = READY_LINE in line
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
    assert ready, f"no {READY_LINE!r} line on stderr (exit code {proc.returncode}):\n{''.join(seen)[-4000:]}"


def test_bundled_cli_speaks_with_the_builtin_voice(bundle: Path, bundle_env: dict[str, str]) -> None:
    res = subprocess.run([str(bundle), "speak", "Hello there.", "--json"], env=bundle_env, cwd=bundle.parent,
                         capture_output=True, text=True, timeout=SPEAK_TIMEOUT_S)
    assert res.returncode == 0, f"exit {res.returncode}; stderr:\n{res.stderr}"
    assert res.stdout.strip(), f"no JSON on stdout; stderr:\n{res.stderr}"
    metrics = json.loads(res.stdout)
    assert metrics["completed"] is True and metrics["error"] is None, metrics
    assert metrics["audio_played_s"] > 0.3, metrics


def test_bundle_carries_the_hibari_voice(bundle: Path, bundle_env: dict[str, str]) -> None:
    # "heart" is hibari's voice only: without its model data or onnxruntime in the bundle this request fails
    # (espeak-ng, the other built-in engine, is a system program and would still answer the default request).
    res = subprocess.run([str(bundle), "-v", "speak", "Hello there.", "--voice", "heart", "--json"],
                         env=bundle_env, cwd=bundle.parent, capture_output=True, text=True,
                         timeout=SPEAK_TIMEOUT_S)
    assert res.returncode == 0, f"exit {res.returncode}; stderr:\n{res.stderr}"
    assert json.loads(res.stdout)["completed"] is True
    engines = [line for line in res.stderr.splitlines() if "built-in voices on" in line]
    assert engines and "hibari" in engines[0], res.stderr


def test_bundle_plays_through_its_own_portaudio(bundle: Path, bundle_env: dict[str, str]) -> None:
    bundled = sorted(bundle.parent.glob("_internal/libportaudio.so*"))
    assert bundled, "libportaudio.so is not in the bundle"
    # The dynamic loader names every library it opens (LD_DEBUG=files): the one dlopen'ed for sounddevice
    # must be the bundled copy, so the bundle works where Debian's libportaudio2 is not installed.
    env = dict(bundle_env, LD_DEBUG="files")
    res = subprocess.run([str(bundle), "devices"], env=env, cwd=bundle.parent, capture_output=True, text=True,
                         timeout=SPEAK_TIMEOUT_S)
    loaded = [line for line in res.stderr.splitlines() if "libportaudio" in line and "file=" in line]
    assert loaded, f"PortAudio was never loaded; stderr tail:\n{res.stderr[-3000:]}"
    assert all(str(bundle.parent / "_internal") in line for line in loaded), "\n".join(loaded)
    assert "nullsink" in res.stdout or "pulse" in res.stdout.lower(), res.stdout
