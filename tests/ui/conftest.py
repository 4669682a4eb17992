"""UI test setup: async tests run on a qasync loop (Qt's event loop), as the window does in the app.

pytest-asyncio (>= 1.4) asks the ``pytest_asyncio_loop_factories`` hook for loop factories; this conftest's
hook applies to the tests in this directory only. Inside these tests, wait by awaiting asyncio events or
polling with ``asyncio.sleep`` — ``qtbot.waitUntil``/``waitSignal`` spin a nested Qt loop and hang under
qasync (see docs/architecture.md).

The speech server is the real BuiltinServer class (per-run token, shaping) serving the replay engine with a
generated clip, so the window's default provider (Built-in) speaks without any configuration; audio goes
to the PulseAudio null sink started by tests/conftest.py.

Every test gets its own settings and cache directories ($VOICEGUI_CONFIG_DIR, $VOICEGUI_CACHE_DIR = tmp
dirs) and an in-memory keyring (tests.ui.memory_keyring.MemoryKeyring, also named in $PYTHON_KEYRING_BACKEND
for child processes), so no test reads or writes the developer's settings, history or keyring.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from voicegui.server.benchclip import write_clip

CLIP_SECONDS = 1.5
TOKEN = "ui-token"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable]:
    from voicegui.ui.app import AppLoop

    return {"qasync": AppLoop}


@pytest.fixture(scope="session")
def ui_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("ui-clip") / "clip.wav", CLIP_SECONDS)


@pytest.fixture(scope="session")
def ui_server(ui_clip: Path):
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine

    with BuiltinServer(engines=[ReplayEngine(ui_clip)]) as srv:
        yield srv


@pytest.fixture(scope="module")
def real_builtin():
    """The real built-in server with its real offline voices (133 with espeak-ng and piper installed)."""
    from voicegui.server.embedded import BuiltinServer

    with BuiltinServer() as srv:
        yield srv


@pytest.fixture
async def real_window(qtbot, real_builtin) -> AsyncIterator:
    """A shown MainWindow on the real built-in server (its 133 voices), closed afterwards."""
    win = await open_window(real_builtin, text="Hello.")
    yield win
    await close_window(win)


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(path))
    run_cache = Path(os.environ["VOICEGUI_CACHE_DIR"])  # the run's (tests/conftest.py)
    cache = tmp_path / "cache"
    cache.mkdir()
    # The history cache per test; the built-in voices' tables (hibari) are the run's, built once.
    (cache / "engines").symlink_to(run_cache / "engines", target_is_directory=True)
    (run_cache / "engines").mkdir(exist_ok=True)
    monkeypatch.setenv("VOICEGUI_CACHE_DIR", str(cache))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return path


@pytest.fixture(autouse=True)
def memory_keyring(memory_keyring):
    """Every UI test gets the in-memory keyring (tests/conftest.py), asked for or not."""
    return memory_keyring


@pytest.fixture
def system_theme():
    """The theme is the application's: a test that changes it starts and ends following the system (light
    offscreen)."""
    from voicegui.ui import theme

    yield
    theme.controller().set_choice("system")


@pytest.fixture
def server(ui_server):
    """The server with default shaping (as fast as it encodes) restored after the test."""
    from voicegui.server.shaping import Shaping

    ui_server.shaping = Shaping()
    yield ui_server
    ui_server.shaping = Shaping()


@pytest.fixture
async def window(qtbot, server) -> AsyncIterator:
    """A shown MainWindow on its default provider (Built-in = the test server), speaking pcm; its session
    is stopped afterwards."""
    win = await open_window(server)
    yield win
    await close_window(win)


# Windows opened by open_window and not closed yet, with the loop they run on.
_open_windows: list[tuple[object, asyncio.AbstractEventLoop]] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Close the test's windows as soon as the test returns or fails, on their own loop.

    pytest-qt calls QApplication.processEvents() right after every test, before fixture teardown. qasync's
    timers and socket notifiers are Qt objects, so that ran the window's still-running Speak *outside* the
    asyncio loop ("no running event loop"): the session died without closing its PortAudio stream, which
    leaked into the next test and once crashed the process (SIGSEGV). Our hook runs inside pytest-qt's (it is
    tryfirst), so the windows are shut down properly before that processEvents.
    """
    try:
        return (yield)
    finally:
        while _open_windows:
            win, loop = _open_windows.pop()
            if not loop.is_closed() and not loop.is_running():
                loop.run_until_complete(close_window(win))


async def open_window(server, text: str = "Hello there, this is a test of the window.", fmt: str | None = "pcm"):
    from voicegui.ui.main_window import MainWindow

    # Not qtbot.addWidget: pytest-qt would close and delete it before the fixture's async teardown runs.
    win = MainWindow(builtin=server)
    _open_windows.append((win, asyncio.get_running_loop()))
    if fmt:
        win.format.setCurrentText(fmt)
    win.text_edit.setPlainText(text)
    win.show()
    win.build_plots()  # as ui/app.py does right after showing it
    # the built-in server's model and voice lists arrive from a request on the loop
    await until(lambda: win.voice.count() > 0 and "voices from" in win.provider_panel.connection.text(), 5,
                "the built-in voice list")
    return win


async def close_window(win) -> None:
    if win.__dict__.get("_released"):
        return  # a test closed it already
    await win.shutdown()  # releases the device and saves the settings; the close is then immediate
    win.close()
    win.deleteLater()
    await asyncio.sleep(0)


def burst_pcm(bursts: Sequence[tuple[float, float]], length_s: float, rate: int = 24000) -> bytes:
    """pcm16 of `length_s` seconds, silent but for a 220 Hz tone over each (start_s, end_s) of `bursts`: audio
    whose word onsets are known (read-along tests)."""
    t = np.arange(int(length_s * rate)) / rate
    audio = np.zeros_like(t)
    for start, end in bursts:
        inside = (t >= start) & (t < end)
        audio[inside] = 0.3 * np.sin(2 * np.pi * 220 * t[inside])
    return (audio * 32767).astype("<i2").tobytes()


def record_word_marks(window) -> list[tuple[float, tuple[int, int] | None]]:
    """(played clock, word) at each change of the window's word mark, read when the mark is set: the time the
    window decided on, not when a poll of the test happened to look (a loaded machine delays polls)."""
    progress = window.text_panel.progress
    mark = progress._highlight_word
    changes: list[tuple[float, tuple[int, int] | None]] = []

    def recorded(span: tuple[int, int] | None) -> None:
        playback = window.playbacks[-1] if window.playbacks else None
        changes.append((playback.session.snapshot().played_s if playback is not None else 0.0, span))
        mark(span)

    progress._highlight_word = recorded
    return changes


async def speak_sampling(qtbot, window, on_sample=None) -> tuple[list[tuple[float, tuple[int, int] | None]], object]:
    """Click Speak; (played clock, word) at each change of the word mark while it plays, and its Playback;
    `on_sample((played, word))` every 10 ms meanwhile."""
    from PySide6.QtCore import Qt

    changes = record_word_marks(window)
    before = len(window.playbacks)
    qtbot.mouseClick(window.speak_button, Qt.MouseButton.LeftButton)
    await until(lambda: len(window.playbacks) > before, 5, "the Speak to start")
    playback = window.playbacks[-1]
    while not playback.done.is_set():
        if on_sample is not None:
            on_sample((playback.session.snapshot().played_s, window.text_panel.highlighted_word))
        await asyncio.sleep(0.01)
    return changes, playback


async def speak_noting_the_tooltip(qtbot, window) -> tuple[list, object, tuple[bool, str]]:
    """speak_sampling, and (timed, tooltip) of the progress line as it last was while a word was marked."""
    progress = window.text_panel.progress
    shown: list[tuple[bool, str]] = []

    def look(sample) -> None:
        if sample[1] is not None:
            shown.append((progress.timed, progress.toolTip()))

    changes, playback = await speak_sampling(qtbot, window, look)
    assert shown, "no word was marked while it played"
    return changes, playback, shown[-1]


async def replay_entry(window, entry_id: str):
    """Replay History entry `entry_id` in the window: its Playback, started."""
    before = len(window.playbacks)
    window.replay(entry_id)
    await until(lambda: len(window.playbacks) > before, 5, "the replay to start")
    replay = window.playbacks[-1]
    assert replay.kind == "replay"
    return replay


def first_marks(text: str, changes: Sequence[tuple[float, tuple[int, int] | None]]) -> dict[str, float]:
    """The played clock at which each word of `text` was first marked, in the order they were."""
    seen: dict[str, float] = {}
    for played, span in changes:
        if span is not None:
            seen.setdefault(text[span[0]:span[1]], played)
    return seen


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll on the running loop (keeps Qt and asyncio going) until predicate() is true."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)
