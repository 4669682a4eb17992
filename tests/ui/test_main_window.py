"""The main window against the real built-in server and real audio (PulseAudio null sink), offscreen.

Waiting happens by awaiting asyncio (``until`` polls with asyncio.sleep), never with qtbot.waitUntil, which
hangs under qasync.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import subprocess

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import CLIP_SECONDS, until
from voicegui.server.shaping import Shaping

pytestmark = pytest.mark.audio


def click(qtbot, button) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


async def speak_and_wait(qtbot, window, timeout_s: float = 15.0):
    """Click Speak, wait for that Speak's session to end; returns its Playback."""
    before = len(window.playbacks)
    click(qtbot, window.speak_button)
    await until(lambda: len(window.playbacks) > before, 5, "the Speak to start")
    playback = window.playbacks[-1]
    await asyncio.wait_for(playback.done.wait(), timeout_s)
    await asyncio.sleep(0.05)  # let the done-callback's widget updates land
    return playback


async def sink_inputs() -> list[str]:
    """Streams playing into PulseAudio right now (the null sink started by tests/conftest.py)."""
    def run() -> list[str]:
        res = subprocess.run(["pactl", "list", "short", "sink-inputs"], capture_output=True, text=True,
                             timeout=10, check=True)
        return [line for line in res.stdout.splitlines() if line.strip()]

    return await asyncio.get_running_loop().run_in_executor(None, run)


def use_custom(window, base_url: str, key: str = "") -> None:
    """Point the window at another server (the Custom provider)."""
    window.provider_panel.set_provider("custom")
    window.base_url.setText(base_url)
    window.api_key.setText(key)
    window.provider_panel.model.setCurrentText("tts-1")
    window.provider_panel.voice.setCurrentText("alloy")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


async def test_speak_plays_and_shows_measured_ttfa(qtbot, window):
    assert window.windowTitle() == "voicegui"
    playback = await speak_and_wait(qtbot, window)
    metrics = playback.metrics
    assert metrics is not None and metrics.error is None, metrics
    assert metrics.completed
    assert metrics.audio_played_s == pytest.approx(CLIP_SECONDS, abs=0.05)
    assert metrics.ttfa_ms is not None and metrics.ttfa_ms > 0
    assert window.ttfa.ttfa_text() == f"{metrics.ttfa_ms:.0f} ms"
    breakdown = metrics.marks.breakdown_ms()
    assert window.ttfa.breakdown["first_byte"].text() == f"{breakdown['first_byte']:.0f} ms"
    assert window.ttfa.underruns.text().startswith(str(metrics.underrun_episodes))
    # the plots were fed from snapshots while it played
    await asyncio.sleep(0.1)
    assert window.plots.waveform.updates > 3 and window.plots.waveform.peak > 0.1
    assert window.plots.buffer.updates > 3 and window.plots.buffer.points > 10
    assert window.plots.buffer.play_line.isVisible()
    assert window.speak_button.isEnabled() and not window.stop_button.isEnabled()
    assert not window.banner.isVisible()


async def test_stop_silences_and_reenables_speak(qtbot, window, server):
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)  # still streaming when Stop comes
    click(qtbot, window.speak_button)
    await until(lambda: window.session is not None and window.session.snapshot().frames_played > 4800,
                10, "audio to play")
    assert window.stop_button.isEnabled()
    assert await sink_inputs(), "the window's audio should be a stream into PulseAudio"
    click(qtbot, window.stop_button)
    playback = window.playback
    await asyncio.wait_for(playback.done.wait(), 3)
    # The device stream is kept open for the next Speak (stream/output.py OutputKeeper); Stop silences it.
    kept = window.player.output.stream
    assert kept is not None and kept.running, "Stop should keep the device stream open, playing silence"
    played = window.session.snapshot().frames_played
    await asyncio.sleep(0.3)
    assert window.session.snapshot().frames_played == played  # silent after Stop
    assert playback.metrics.stopped and not playback.metrics.completed and playback.metrics.error is None
    assert window.speak_button.isEnabled() and not window.stop_button.isEnabled()
    assert not window.banner.isVisible()


async def test_speak_during_speak_never_overlaps(qtbot, window, server):
    # 20 clicks before the loop runs any of them: only the last may start a session.
    for _ in range(20):
        window.speak_button.click()
    await until(lambda: len(window.playbacks) == 20, 5, "20 Speaks to be handled")
    last = window.playbacks[-1]
    await asyncio.wait_for(last.done.wait(), 15)
    entered = [p for p in window.playbacks if p.entered_at is not None]
    assert entered == [last], "only the newest of the rapid clicks may reach the device"
    assert last.metrics.completed and last.metrics.error is None

    # Clicks while it plays restart it: each session is over before the next one starts.
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    first = len(window.playbacks)
    click(qtbot, window.speak_button)
    for _ in range(4):
        await asyncio.sleep(0.15)
        click(qtbot, window.speak_button)
    await until(lambda: len(window.playbacks) >= first + 5, 5, "the Speaks to be handled")
    final = window.playbacks[-1]
    await asyncio.wait_for(final.done.wait(), 15)
    runs = sorted((p for p in list(window.playbacks)[first:] if p.entered_at is not None),
                  key=lambda p: p.entered_at)
    assert len(runs) >= 2
    for before, after in itertools.pairwise(runs):
        assert before.left_at is not None and before.left_at <= after.entered_at, "two sessions overlapped"
    assert all(p.metrics.stopped for p in runs[:-1])
    assert final.metrics.completed and final.metrics.error is None
    assert not window.banner.isVisible()


async def test_bigger_prebuffer_means_later_first_sound(qtbot, window, server):
    throughput = 2.0
    server.shaping = Shaping(throughput_x=throughput, write_bytes=1024)
    ttfa = {}
    for ms in (1000, 50):
        window.tuning.set_prebuffer(ms)
        playback = await speak_and_wait(qtbot, window)
        assert playback.metrics.completed, playback.metrics
        ttfa[ms] = playback.metrics.ttfa_ms
    # 950 ms more audio to wait for, arriving at 2x real time: ~475 ms later. Ask for half of it.
    expected_gap = (1000 - 50) / throughput
    assert ttfa[1000] - ttfa[50] > 0.5 * expected_gap, ttfa


async def test_unreachable_server_shows_banner_and_next_speak_works(qtbot, window, server):
    use_custom(window, f"http://127.0.0.1:{closed_port()}/v1")
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.error
    assert window.banner.isVisible()
    assert window.banner.text() == playback.metrics.error
    assert playback.metrics.error in window.status_line.text()
    assert window.speak_button.isEnabled()

    use_custom(window, server.base_url, server.token)
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.completed and playback.metrics.error is None
    assert not window.banner.isVisible()


async def test_speak_is_disabled_with_a_reason_for_empty_text(qtbot, window):
    window.text_edit.setPlainText("   \n ")
    assert not window.speak_button.isEnabled()
    assert "Nothing to speak" in window.speak_reason.text()
    assert window.char_count.text() == "5 / 4096"
    window.text_edit.setPlainText("x" * 200_001)
    assert not window.speak_button.isEnabled() and "200000" in window.speak_reason.text()
    window.text_edit.setPlainText("Hi.")
    assert window.speak_button.isEnabled() and window.speak_reason.text() == ""
    assert window.api_key.echoMode() == window.api_key.EchoMode.Password


async def test_close_handler_stops_the_session(qtbot, window, server):
    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    closed = asyncio.Event()
    window.closed.connect(closed.set)
    click(qtbot, window.speak_button)
    await until(lambda: window.session is not None and window.session.snapshot().frames_played > 0, 10,
                "audio to play")
    window.close()
    assert window.isVisible()  # the close waits for the device to be released
    await asyncio.wait_for(closed.wait(), 3)
    assert not window.isVisible()
    assert window.playback.done.is_set() and window.playback.metrics.stopped


async def test_screenshots(qtbot, window, server, artifacts_dir, caplog):
    caplog.set_level(logging.INFO)
    # The default size (no saved geometry): the Voice tab fits without scrolling, the plots get the larger
    # share, and the line-up/history tabs do not force the right pane wider than planned.
    assert (window.width(), window.height()) == (1280, 800)
    await asyncio.sleep(0.1)
    voice_page = window.tabs.widget(0)
    assert not voice_page.verticalScrollBar().isVisible(), "the Voice tab should not scroll at the default size"
    left, right = window.splitter.sizes()
    assert left > right, (left, right)
    assert window.grab().save(str(artifacts_dir / "ui-default-idle.png"))
    playback = await speak_and_wait(qtbot, window)
    assert playback.metrics.completed
    buffer_legend = window.plots.buffer.legend_text()
    assert buffer_legend["underruns"] == f"underruns {playback.metrics.underrun_episodes}"
    assert window.plots.buffer.getPlotItem().titleLabel.text == "Buffer (ms)"  # short: never cut off
    assert window.grab().save(str(artifacts_dir / "ui-default-done.png"))

    window.resize(1100, 720)
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-idle.png"))

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    window.tuning.set_prebuffer(200)
    before = len(window.playbacks)
    click(qtbot, window.speak_button)
    await until(lambda: len(window.playbacks) > before and window.session.snapshot().frames_played > 24000 * 0.8,
                10, "audio to play")
    await asyncio.sleep(0.3)  # let the slow timer draw the live numbers
    assert window.ttfa.ttfa_text().endswith(" ms"), "the measured TTFA shows while it plays"
    assert window.grab().save(str(artifacts_dir / "ui-speaking.png"))
    await asyncio.wait_for(window.playback.done.wait(), 10)
    await asyncio.sleep(0.1)
    assert window.grab().save(str(artifacts_dir / "ui-done.png"))

    use_custom(window, f"http://127.0.0.1:{closed_port()}/v1")
    await speak_and_wait(qtbot, window)
    assert window.banner.isVisible()
    assert window.grab().save(str(artifacts_dir / "ui-error.png"))

    window.banner.hide()
    window.provider_panel.set_provider("openai")  # no key: known lists, no request
    window.provider_panel.model.setCurrentText("tts-1")
    await asyncio.sleep(0.05)
    assert window.provider_panel.warning.isVisible()
    assert window.grab().save(str(artifacts_dir / "ui-shutdown-warning.png"))
    window.tabs.setCurrentIndex(1)
    await asyncio.sleep(0.05)
    assert window.grab().save(str(artifacts_dir / "ui-playback-tab.png"))
    assert window.plots.buffer.legend.isVisible()
    window.resize(760, 520)  # small: panels scroll, nothing overlaps
    await asyncio.sleep(0.05)
    # the legend is under the plots, not in them: it wraps onto more lines instead of being cut off
    assert window.plots.buffer.legend_fits() and window.plots.buffer.legend.isVisible()
    for plot in (window.plots.waveform, window.plots.buffer):  # a narrow plot still shows its whole range
        assert plot.getPlotItem().sceneBoundingRect().width() <= plot.viewport().width() + 1
    assert window.grab().save(str(artifacts_dir / "ui-small.png"))
    window.resize(1100, 720)
    await asyncio.sleep(0.05)
    assert window.plots.buffer.legend.isVisible()


async def test_keyboard_shortcuts_speak_and_stop(qtbot, window, server):
    from PySide6.QtTest import QTest

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)
    window.activateWindow()
    window.text_edit.setFocus()
    await until(lambda: window.isActiveWindow(), 3, "the window to become active")
    QTest.keyClick(window.text_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: window.is_speaking(), 5, "Ctrl+Return to start speaking")
    assert window.text_edit.toPlainText() == "Hello there, this is a test of the window."  # no newline typed
    QTest.keyClick(window.text_edit, Qt.Key.Key_Escape)
    await asyncio.wait_for(window.playback.done.wait(), 5)
    assert window.playback.metrics is None or window.playback.metrics.stopped


def test_run_window_logs_ready_and_exits_on_interrupt(tmp_path):
    """The packaging smoke test's contract: `voicegui -v` logs "voicegui ready"; Ctrl+C ends it cleanly."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "voicegui", "-v"], env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "voicegui ready" in line:
                break
        assert any("voicegui ready" in line for line in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130
        rest = proc.stderr.read()
        assert "Traceback" not in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_invalid_tuning_is_reported_and_nothing_starts(qtbot, window):
    window.tuning.latency.setEditText("fast")
    click(qtbot, window.speak_button)
    await until(lambda: window.banner.isVisible(), 3, "the banner")
    assert "latency" in window.banner.text()
    assert not window.playbacks and window.speak_button.isEnabled()
    window.banner.close_button.click()
    assert not window.banner.isVisible()


async def test_live_ttfa_is_the_measured_first_sound_while_playing(qtbot, window, server):
    from voicegui.ui.panels import DASH

    server.shaping = Shaping(throughput_x=1.0, write_bytes=1024)  # still playing while we look
    window.tuning.set_prebuffer(200)
    click(qtbot, window.speak_button)
    await until(lambda: window.session is not None and window.session._output is not None
                and window.session._output.first_sound_at is not None, 10, "the first sound")
    session = window.session
    # the 4 Hz readout shows it within a tick or two, while the session is still playing
    await until(lambda: window.ttfa.ttfa_text() not in ("…", DASH), 1.0, "the live TTFA")
    assert session.metrics is None, "the number must come while playing, not at the end"
    live = window.ttfa.ttfa_text()
    assert not live.startswith("~") and live.endswith(" ms")
    assert window.ttfa.breakdown["first_sound"].text() == live
    assert window.ttfa.breakdown["device_latency"].text() != DASH
    await asyncio.wait_for(window.playback.done.wait(), 10)
    await asyncio.sleep(0.05)
    metrics = window.playback.metrics
    assert metrics.completed
    assert window.ttfa.ttfa_text() == live == f"{metrics.ttfa_ms:.0f} ms"  # the same number, measured once


async def test_voice_choices_are_the_full_provider_list(qtbot, window):
    pp = window.provider_panel
    full = pp.voice_choices()
    assert len(full) >= 3 and window.voice_choices() == full
    pp.voice_filter.setText(full[-1][0])  # narrows the browser, not the list the tabs offer
    assert len(pp.picker.visible_ids()) < len(full)
    assert window.voice_choices() == full


@pytest.mark.parametrize("reworded", [True, False])
async def test_realtime_transcript_is_shown_and_flagged_when_reworded(qtbot, window, reworded):
    from tests.stream.realtime_server import FakeRealtimeServer

    text = "Hello there, this is a test of the window."
    window.text_edit.setPlainText(text)
    async with FakeRealtimeServer() as rt:
        said = "Hi there, this was a test of a window." if reworded else "hello there... this is a TEST of the window"
        rt.transcript_for = lambda _text: said
        use_custom(window, rt.ws_url, rt.api_key or "")
        window.provider_panel.model.setCurrentText("gpt-realtime-2.1-mini")
        window.provider_panel.voice.setCurrentText("marin")
        assert window.transcript_box.isVisible()
        playback = await speak_and_wait(qtbot, window)
        assert playback.metrics.completed and playback.metrics.error is None, playback.metrics
        assert rt.connections, "the Speak went over the Realtime websocket"
    assert window.transcript.toPlainText() == said
    assert window.transcript_flag.isVisible() is reworded
