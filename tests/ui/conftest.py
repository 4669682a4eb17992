"""UI test setup: async tests run on a qasync loop (Qt's event loop), as the window does in the app.

pytest-asyncio (>= 1.4) asks the ``pytest_asyncio_loop_factories`` hook for loop factories; this conftest's
hook applies to the tests in this directory only. Inside these tests, wait by awaiting asyncio events or
polling with ``asyncio.sleep`` — ``qtbot.waitUntil``/``waitSignal`` spin a nested Qt loop and hang under
qasync (see DESIGN.md).

The speech server is the real built-in one (ServerThread) replaying a generated clip; audio goes to the
PulseAudio null sink started by tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import qasync

from voicegui.benchclip import write_clip

CLIP_SECONDS = 1.5
TOKEN = "ui-token"


class _TestLoop(qasync.QEventLoop):
    """A qasync loop with the async-generator hooks the app installs; puts the previous hooks back on close
    so the next (non-Qt) test does not inherit hooks bound to a closed loop."""

    def __init__(self) -> None:
        from voicegui.ui.app import ensure_application, install_asyncgen_hooks

        super().__init__(ensure_application([]))
        self._old_hooks = sys.get_asyncgen_hooks()
        install_asyncgen_hooks(self)

    def close(self) -> None:
        sys.set_asyncgen_hooks(*self._old_hooks)
        super().close()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable]:
    return {"qasync": _TestLoop}


@pytest.fixture(scope="session")
def ui_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("ui-clip") / "clip.wav", CLIP_SECONDS)


@pytest.fixture(scope="session")
def ui_server(ui_clip: Path):
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread

    with ServerThread(ReplayEngine(ui_clip), token=TOKEN) as srv:
        yield srv


@pytest.fixture
def server(ui_server):
    """The server with default shaping (as fast as it encodes) restored after the test."""
    from voicegui.server.shaping import Shaping

    ui_server.shaping = Shaping()
    yield ui_server
    ui_server.shaping = Shaping()


@pytest.fixture
async def window(qtbot, server) -> AsyncIterator:
    """A shown MainWindow pointed at the test server, speaking pcm; its session is stopped afterwards."""
    from voicegui.ui.main_window import MainWindow

    win = MainWindow()
    # Not qtbot.addWidget: pytest-qt would close and delete it before this fixture's async teardown runs.
    win.base_url.setText(server.base_url)
    win.api_key.setText(TOKEN)
    win.format.setCurrentText("pcm")
    win.text_edit.setPlainText("Hello there, this is a test of the window.")
    win.show()
    yield win
    await win.shutdown()  # releases the device; the close is then immediate
    win.close()
    win.deleteLater()
    await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll on the running loop (keeps Qt and asyncio going) until predicate() is true."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)
