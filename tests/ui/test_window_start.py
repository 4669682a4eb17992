"""The window's start-up with the built-in voices: shown first, the server started lazily, only the default
voice's engine loaded, and a Speak clicked before the voices are ready queued until they are.

The built-in server is made slow to start deterministically: `start_builtin` gets a server factory that waits
on a threading.Event the test sets (it runs in a worker thread, as the app's does). Speaks play through the
real server (the replay engine) to the PulseAudio null sink; one test starts the real offline engines.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from tests.ui.conftest import _open_windows, close_window, until
from voicegui.server.embedded import BuiltinServer, BuiltinUnavailable
from voicegui.server.engines.base import VoiceInfo
from voicegui.server.engines.builtin import LazyEngine
from voicegui.server.engines.replay import ReplayEngine
from voicegui.ui.app import start_builtin
from voicegui.ui.main_window import QUEUED_LABEL, QUEUED_STATUS, SPEAK_LABEL, MainWindow
from voicegui.ui.provider_panel import BUILTIN_STARTING

pytestmark = pytest.mark.audio

GATE_S = 20.0  # a factory whose test failed must not keep its worker thread forever


def gated(server, gate: threading.Event):
    """A server factory that returns `server` only once `gate` is set: the built-in voices are slow to start."""
    def make():
        if not gate.wait(GATE_S):
            raise RuntimeError("the test never opened the gate")
        return server
    return make


async def bare_window(server, text: str = "Hello, queued speech.") -> MainWindow:
    """A shown window with no built-in server yet, as the app opens it; speaking pcm with a voice the
    replay server offers."""
    win = MainWindow()
    _open_windows.append((win, asyncio.get_running_loop()))
    win.format.setCurrentText("pcm")
    win.voice.setEditText(server.default_voice)
    win.text_edit.setPlainText(text)
    win.show()
    return win


async def test_speak_before_ready_is_queued_and_spoken_when_ready(qtbot, server):
    gate = threading.Event()
    win = await bare_window(server)
    task = asyncio.ensure_future(start_builtin(win, gated(server, gate)))
    try:
        win.speak_button.click()
        await asyncio.sleep(0.1)  # give the slot its turn: nothing may start, and nothing may be refused
        assert win.is_queued()
        assert win.status_line.text() == QUEUED_STATUS
        assert win.speak_button.text() == QUEUED_LABEL and not win.speak_button.isEnabled()
        assert win.stop_button.isEnabled()
        assert not win.banner.isVisible(), win.banner.text()
        assert win.playbacks == []
        win.text_edit.setPlainText("The text as it is when the voices are ready.")
    finally:
        gate.set()
    assert await task is server
    await until(lambda: len(win.playbacks) == 1, 10, "the queued Speak to start")
    playback = win.playbacks[0]
    await asyncio.wait_for(playback.done.wait(), 15)
    assert playback.options.request.text == "The text as it is when the voices are ready."
    assert playback.metrics is not None and playback.metrics.error is None
    assert playback.metrics.audio_played_s > 0
    assert not win.is_queued() and win.speak_button.text() == SPEAK_LABEL
    await close_window(win)


async def test_stop_cancels_a_queued_speak(qtbot, server):
    gate = threading.Event()
    win = await bare_window(server)
    task = asyncio.ensure_future(start_builtin(win, gated(server, gate)))
    try:
        win.speak_button.click()
        await until(win.is_queued, 5, "the Speak to be queued")
        win.stop_button.click()
        await until(lambda: not win.is_queued(), 5, "Stop to drop the queued Speak")
        assert win.speak_button.text() == SPEAK_LABEL and win.speak_button.isEnabled()
    finally:
        gate.set()
    await task
    await until(win.is_builtin_ready, 5, "the voices to be ready")
    for _ in range(20):  # the loop's turns in which a queued Speak would have started
        await asyncio.sleep(0.01)
    assert win.playbacks == []
    assert win.player.current is None
    await close_window(win)


async def test_failed_start_drops_the_queued_speak_with_the_reason(qtbot, server):
    gate = threading.Event()

    def broken():
        gate.wait(GATE_S)
        raise BuiltinUnavailable("no offline voice is available: espeak-ng not found: apt-get install espeak-ng")

    win = await bare_window(server)
    task = asyncio.ensure_future(start_builtin(win, broken))
    win.speak_button.click()
    await until(win.is_queued, 5, "the Speak to be queued")
    gate.set()
    assert await task is None
    assert not win.is_queued()
    assert win.banner.isVisible()
    assert "espeak-ng not found" in win.banner.text() and "another provider" in win.banner.text()
    assert win.speak_button.text() == SPEAK_LABEL and win.speak_button.isEnabled()
    # A Speak now says why at once instead of waiting for voices that will not come.
    win.banner.hide()
    win.speak_button.click()
    await until(win.banner.isVisible, 5, "the error for the next Speak")
    assert not win.is_queued() and win.playbacks == []
    await close_window(win)


async def test_still_starting_error_is_gone_once_ready(qtbot, server):
    """Neither the window's Speak nor a tab that asked too early (the line-up and A/B are told
    BUILTIN_STARTING) may leave "still starting" up once the voices are ready."""
    gate = threading.Event()
    win = await bare_window(server)
    task = asyncio.ensure_future(start_builtin(win, gated(server, gate)))
    try:
        win.speak_button.click()
        await asyncio.sleep(0.1)  # the slot's turn
        with pytest.raises(ValueError, match="still starting") as refused:
            win.speak_options(voice=server.default_voice)  # what the line-up and A/B tabs call
        win.show_error(str(refused.value))  # ... and show, as they do
        assert win.banner.isVisible()
    finally:
        gate.set()
    await task
    await until(win.is_builtin_ready, 5, "the voices to be ready")
    for playback in win.playbacks:  # the queued Speak, if it played
        await asyncio.wait_for(playback.done.wait(), 15)
    assert BUILTIN_STARTING not in win.status_line.text()
    assert not win.banner.isVisible() or BUILTIN_STARTING not in win.banner.text(), win.banner.text()
    await close_window(win)


def slow_engine_module(clip, gate: threading.Event, loads: list[int]) -> SimpleNamespace:
    """An engine module as LazyEngine expects one (constants + create()), whose model "loads" only once `gate`
    is set; the engine is a real ReplayEngine speaking the clip with the voice "slow:one"."""
    def create(warm: bool = True) -> ReplayEngine:
        if not gate.wait(GATE_S):
            raise RuntimeError("the test never opened the gate")
        loads.append(1)
        return ReplayEngine(clip, models=["slow"], voices=["slow:one"])

    return SimpleNamespace(ENGINE_NAME="slow", MODEL_ID="slow", create=create,
                           VOICES=[VoiceInfo("slow:one", "One", "en", "slow")])


async def test_first_speak_with_another_engine_shows_it_loading(qtbot, ui_clip):
    gate, loads = threading.Event(), []
    lazy = LazyEngine(slow_engine_module(ui_clip, gate, loads))
    srv = await asyncio.to_thread(BuiltinServer, engines=[ReplayEngine(ui_clip), lazy])
    try:
        win = await bare_window(srv)
        assert await start_builtin(win, lambda: srv) is srv
        assert not lazy.loaded  # the default voice is the replay engine's: "slow" loads on first use
        await until(lambda: "slow:one" in [v for v, _ in win.voice_choices()], 5, "the slow engine's voice listed")
        win.voice.setEditText("slow:one")
        try:
            win.speak_button.click()
            await until(lambda: win.speak_button.text() == "Loading slow voice…", 5, "the loading state")
            assert win.status_line.text() == "Loading slow voice…"
            assert not win.speak_button.isEnabled() and win.stop_button.isEnabled()
            assert win.playbacks == []
        finally:
            gate.set()
        await until(lambda: len(win.playbacks) == 1, 10, "the Speak after the load")
        await asyncio.wait_for(win.playbacks[0].done.wait(), 15)
        assert lazy.loaded and loads == [1]
        assert win.playbacks[0].metrics is not None and win.playbacks[0].metrics.error is None
        assert win.speak_button.text() == SPEAK_LABEL
        await close_window(win)
    finally:
        gate.set()
        await asyncio.to_thread(srv.stop)


async def test_idle_window_has_loaded_only_the_default_engine(qtbot):
    """The app's own start (real offline engines, lazy): every voice listed, only the default one loaded."""
    win = MainWindow()
    _open_windows.append((win, asyncio.get_running_loop()))
    win.show()
    srv = await start_builtin(win)
    assert srv is not None, win.banner.text()
    try:
        assert win.is_builtin_ready()
        default = srv.engine.engine_for(srv.default_voice)
        lazies = [e for e in srv.engine.engines if isinstance(e, LazyEngine)]
        assert lazies, "the app's server must load its neural engines lazily"
        assert [e.name for e in lazies if e.loaded] == ([default.name] if default in lazies else [])
        await until(lambda: len(win.voice_choices()) == len(srv.voices()), 5, "every voice listed")
        assert {v for v, _ in win.voice_choices()} == {v.id for v in srv.voices()}
        await close_window(win)
    finally:
        await asyncio.to_thread(srv.stop)


async def test_the_plots_are_built_after_the_window_is_shown_in_their_place(qtbot, server):
    """The window shows without its plots (pyqtgraph is the slowest part to build); build_plots() (the app calls
    it right after show) puts them where they belong: under the text, in the left column, in the Tab order."""
    win = await bare_window(server)
    assert not win.plots_built
    win.build_plots()
    await asyncio.sleep(0.05)
    plots = win.plots
    assert plots.isVisible() and plots.height() > 100
    assert plots.mapTo(win, plots.rect().topLeft()).y() > win.text_edit.mapTo(win, win.text_edit.rect().topLeft()).y()
    assert plots.mapTo(win, plots.rect().topLeft()).x() < win.width() // 2
    win.build_plots()  # once only
    assert win.plots is plots


async def test_a_speak_before_the_plots_are_built_builds_them(qtbot, server):
    win = await bare_window(server)
    win.set_builtin(server)
    await until(lambda: "voices from" in win.provider_panel.connection.text(), 5, "the built-in voice list")
    assert not win.plots_built
    win.speak_button.click()
    await until(lambda: bool(win.playbacks) and win.playbacks[-1].done.is_set(), 15, "the Speak to end")
    assert win.plots_built and win.plots.waveform.updates > 0
