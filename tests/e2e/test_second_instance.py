"""Issue 19 end to end: a real window process (`python -m voicegui`, offscreen, the built-in offline voices,
the PulseAudio null sink) and real second processes (`voicegui speak`, `voicegui stop`, `voicegui`).

The second process's `speak` is heard through the window (its log's first-sound mark, the null sink's
monitor, and the window's History file) while the second process itself never loads the audio stack, so
two processes never play at once; `stop` stops it; a second `voicegui` raises the first and exits; a socket
left by a killed window is taken over by the next one.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_startup import loaded
from tests.e2e.handoff_bench import FIRST_SOUND, READY, WindowProcess, launch_to_first_sound
from tests.e2e.monitor import MonitorRecording, sound_segments
from voicegui.instance_protocol import SOCKET_NAME

pytestmark = pytest.mark.audio

LONG_TEXT = " ".join(f"This is sentence number {i} of a text long enough to be stopped." for i in range(12))


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="vg-e2e-") as tmp:  # short: a unix socket path is bounded
        yield Path(tmp), Path(tmp) / "rt"


@pytest.fixture
def window(dirs) -> Iterator[WindowProcess]:
    win = WindowProcess(*dirs)
    try:
        win.wait_for(READY, 120)
        yield win
    finally:
        win.stop()


def history_texts(root: Path) -> list[str]:
    index = root / "cache" / "history" / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line).get("text", "") for line in index.read_text().splitlines() if line.strip()]


def until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_speak_from_a_second_process_is_heard_through_the_window(window, dirs):
    text = "Hello from a second process."
    seen = len(window.lines)
    with MonitorRecording() as rec:
        res = window.command("speak", text, importtime=True)
        assert res.returncode == 0, res.stderr[-2000:]
        window.wait_for(FIRST_SOUND, 60, after=seen)
        until(lambda: text in history_texts(dirs[0]), 30, "the window's History entry")
    assert "voicegui: speaking the text in the voicegui window" in res.stderr
    modules = set(line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:"))
    # The command never touched the audio device: the only process that played is the window.
    assert loaded(modules, {"sounddevice", "PySide6", "openai"}) == set()
    assert sound_segments(rec.samples), "nothing was heard on the null sink"


def test_stop_from_a_second_process_stops_the_window(window):
    seen = len(window.lines)
    assert window.command("speak", LONG_TEXT).returncode == 0
    window.wait_for("handed-over Speak started", 60, after=seen)
    res = window.command("stop")
    assert res.returncode == 0 and res.stderr.strip() == "voicegui: stopped", res.stderr
    window.wait_for("handed-over Speak finished", 30, after=seen)
    res = window.command("stop")
    assert res.returncode == 0 and res.stderr.strip() == "voicegui: nothing is playing", res.stderr


def test_the_plots_are_built_once_the_default_voice_is_ready(window):
    # pyqtgraph's import and the plots hold the GUI thread's GIL ~0.35 s, which the engine's load needs.
    window.wait_for("plots built", 60)
    ready = next(i for i, line in enumerate(window.lines) if READY in line)
    built = next(i for i, line in enumerate(window.lines) if "plots built" in line)
    assert ready < built, window.lines


def test_a_second_window_raises_the_first_and_exits(window, dirs):
    res = window.command()  # plain `voicegui`
    assert res.returncode == 0, res.stderr[-2000:]
    assert window.proc.poll() is None  # the first still runs and still takes requests
    assert window.command("stop").returncode == 0


def test_a_socket_left_by_a_crashed_window_is_taken_over(dirs):
    root, runtime = dirs
    first = WindowProcess(root, runtime)
    try:
        first.wait_for(READY, 120)
    finally:
        first.kill()
    assert (runtime / SOCKET_NAME).exists()  # what the crash left
    res = first.command("stop")
    assert res.returncode == 0 and "nothing is playing" in res.stderr
    second = WindowProcess(root, runtime)
    try:
        second.wait_for(READY, 120)
        second.wait_for("removing the stale socket", 5)
        stages: list[str] = []
        sound_ms, _heard = launch_to_first_sound(second, "The new window speaks.", stages)
        assert sound_ms > 0
        # The benchmark's breakdown: when the window read the request, then its own stages after that.
        assert stages and "after launch" in stages[0], stages
        assert all(f"{stage}=+" in stages[1] for stage in ("started", "request_sent", "first_byte", "first_sound"))
    finally:
        assert second.stop() == 130  # Ctrl+C: the clean shutdown path, not a crash
    assert not (runtime / SOCKET_NAME).exists()  # a clean exit removes it
