"""`voicegui bench --window`: what a Speak in the real window costs, next to the same Speak from the CLI path.

For each format (pcm, mp3) and scenario (prebuffer 0 and auto prebuffer, server at 2x real time, 1 KB
writes), run by run and interleaved (window then CLI, CLI then window on the next run, so a noisy machine
weighs on both alike):

* window: the real MainWindow, shown, on the built-in provider (a BuiltinServer serving the replay engine
  with a generated clip); the Speak is a click on its Speak button (the ``speak`` async slot). Measured:
  added latency (the server's first body byte sent -> the session's first non-silent sample handed to the
  device, ``metrics.marks.first_sound``, both ``time.monotonic()``), the plots' frame rate while speaking
  (paint events of the waveform plot's viewport and, apart, of the buffer plot's, whose gate line, underrun
  spans and labels cost more than its curve alone; and the plot timer's redraws, per second from first sound
  to the end of the Speak) and this process's CPU share over the Speak, every thread but the server's, and
  the GUI thread's alone (``time.thread_time``: the loop, the session's loop side, the widgets and the plots;
  less sensitive to a busy machine than the wall-clock share of all threads).
* CLI: ``voicegui bench``'s own run (bench.run_once) against the same server, on a plain asyncio loop.

Threads: the main thread is the Qt GUI thread; during a window run it also runs the qasync loop (an
``asyncio.Runner`` with a qasync loop factory, as the app and tests/ui do), during a CLI run a plain asyncio
loop (``asyncio.run``), never both at once. The speech server runs on its own loop in its daemon thread
(ServerThread inside BuiltinServer); PortAudio's callback thread plays. The paint counter is an event
filter, so it runs on the GUI thread. Settings and history go to a temporary directory
($VOICEGUI_CONFIG_DIR, $VOICEGUI_CACHE_DIR), never the user's.

Needs an output device: the README figures use a PulseAudio null sink with a low-latency recorder on its
monitor (see docs/architecture.md, "Measured facts").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicegui.cli.args import EXIT_OK
from voicegui.cli.bench import SCENARIOS, Scenario, cpu_ticks, machine_summary, run_once
from voicegui.server.benchclip import speech_like, write_clip

if TYPE_CHECKING:
    from voicegui.ui.main_window import MainWindow

log = logging.getLogger(__name__)

WINDOW_FORMATS = ("pcm", "mp3")
WINDOW_SCENARIOS = (SCENARIOS[0], SCENARIOS[1])  # prebuffer 0 and auto, both at 2x real time
GOAL_MS = 5.0  # a Speak in the window may add at most this to the CLI's added latency
README_BEGIN = "<!-- bench-window:{platform}:begin -->"  # one block per Qt platform (offscreen, xcb)
README_END = "<!-- bench-window:{platform}:end -->"
SETTLE_S = 0.3  # idle time after each Speak (history write, last redraw), not measured


def _paint_counter(target: Any) -> Any:
    """An event filter on `target` (a widget) that keeps the monotonic time of each of its paint events."""
    from PySide6.QtCore import QEvent, QObject

    class PaintCounter(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                self.times.append(time.monotonic())
            return False

    counter = PaintCounter()
    target.installEventFilter(counter)
    return counter


async def _until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.005)


async def _open_window(server: Any, text: str) -> MainWindow:
    from voicegui.ui.main_window import MainWindow

    win = MainWindow(builtin=server)
    win.text_edit.setPlainText(text)
    win.show()
    # the built-in server's voice list arrives from a request on the loop
    await _until(lambda: win.voice.count() > 0 and "voices from" in win.provider_panel.connection.text(), 10,
                 "the built-in voice list")
    return win


async def _close_window(win: MainWindow) -> None:
    await win.shutdown()
    win.close()
    win.deleteLater()
    await asyncio.sleep(0)


async def _window_run(win: MainWindow, server: Any, counters: tuple[Any, Any], fmt: str, scenario: Scenario,
                      clip_frames: int, seed: int, write_bytes: int) -> dict:
    """One Speak clicked in the window; the row has the same keys as bench.run_once's, plus the frame rates."""
    from voicegui.server.shaping import Shaping

    win.format.setCurrentText(fmt)
    win.tuning.set_prebuffer(scenario.prebuffer_ms)
    server.shaping = Shaping(throughput_x=scenario.throughput_x, jitter_s=scenario.jitter_s,
                             write_bytes=write_bytes, seed=seed)
    previous = win.playback
    updates0 = win.plots.waveform.updates
    ticks0, wall0, gui0 = cpu_ticks(server.native_id), time.monotonic(), time.thread_time()
    win.speak_button.click()
    await _until(lambda: win.playback is not previous, 5, "the Speak to start")
    playback = win.playback
    assert playback is not None
    await playback.done.wait()
    ticks1, wall1, gui1 = cpu_ticks(server.native_id), time.monotonic(), time.thread_time()
    updates = win.plots.waveform.updates - updates0
    metrics = playback.metrics
    record = server.records[-1]
    row: dict = {"path": "window", "format": fmt, "scenario": scenario.name, "added_ms": None, "fps": None,
                 "buffer_fps": None, "redraws_per_s": None, "played_share": 0.0, "underruns": 0,
                 "cpu_pct": (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (wall1 - wall0) * 100,
                 "gui_cpu_pct": (gui1 - gui0) / (wall1 - wall0) * 100,
                 "error": metrics.error if metrics is not None else "no metrics"}
    if metrics is not None:
        first_sound = metrics.marks.first_sound
        if first_sound is not None and record.first_byte_sent_at is not None:
            row["added_ms"] = (first_sound - record.first_byte_sent_at) * 1000
        rate = metrics.sample_rate or 24000
        row["played_share"] = min(1.0, metrics.audio_played_s * rate / clip_frames) if clip_frames else 0.0
        row["underruns"] = metrics.underrun_episodes
        end = playback.left_at or wall1
        if first_sound is not None and end > first_sound:
            span = end - first_sound
            row["fps"], row["buffer_fps"] = (sum(1 for t in c.times if first_sound <= t <= end) / span
                                             for c in counters)
            row["redraws_per_s"] = updates / (end - playback.entered_at) if playback.entered_at else None
    await asyncio.sleep(SETTLE_S)
    # The window keeps its device stream open after a Speak (stream/output.py OutputKeeper), playing silence on
    # the callback thread (~7 % of a core): closed here so the CLI run measured next in this process does not
    # count it. The window's own row counts its stream, opened for the Speak.
    await asyncio.to_thread(win.player.output.close)
    return row


@contextmanager
def _private_dirs() -> Iterator[Path]:
    """Settings and history in a temporary directory for the duration (the user's are not touched)."""
    names = ("VOICEGUI_CONFIG_DIR", "VOICEGUI_CACHE_DIR")
    old = {name: os.environ.get(name) for name in names}
    with tempfile.TemporaryDirectory(prefix="voicegui-bench-window-") as tmp:
        os.environ["VOICEGUI_CONFIG_DIR"] = str(Path(tmp) / "config")
        os.environ["VOICEGUI_CACHE_DIR"] = str(Path(tmp) / "cache")
        try:
            yield Path(tmp)
        finally:
            for name, value in old.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def bench_rows(runs: int, seconds: float, write_bytes: int, formats: list[str],
               scenarios: list[Scenario]) -> list[dict]:
    """All rows, window and CLI interleaved run by run (after one unmeasured warm-up of each)."""
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.ui.app import AppLoop

    rows: list[dict] = []
    text = ("This is a sentence of about the clip's length. " * 10)[: int(seconds * 15)]
    clip_frames = len(speech_like(seconds))
    with _private_dirs() as tmp:
        clip = write_clip(tmp / "clip.wav", seconds)
        with BuiltinServer(engines=[ReplayEngine(clip)]) as server, \
                asyncio.Runner(loop_factory=AppLoop) as runner:
            loop = runner.get_loop()
            hooks = sys.get_asyncgen_hooks()
            win = runner.run(_open_window(server, text))
            counters = (_paint_counter(win.plots.waveform.viewport()), _paint_counter(win.plots.buffer.viewport()))

            def window(fmt: str, scenario: Scenario, seed: int) -> dict:
                asyncio.set_event_loop(loop)  # asyncio.run() of the CLI run leaves no current loop
                sys.set_asyncgen_hooks(*hooks)
                return runner.run(_window_run(win, server, counters, fmt, scenario, clip_frames, seed, write_bytes))

            def cli(fmt: str, scenario: Scenario, seed: int) -> dict:
                row = asyncio.run(run_once(server, fmt, scenario, text, clip_frames, seed, write_bytes))
                return {"path": "cli", **row}

            try:
                # Unmeasured warm-up of both paths: a sound server's first stream can stall.
                window("pcm", scenarios[0], 0)
                cli("pcm", scenarios[0], 0)
                for scenario in scenarios:
                    for fmt in formats:
                        for run in range(runs):
                            order = (window, cli) if run % 2 == 0 else (cli, window)
                            for measure in order:
                                row = measure(fmt, scenario, run)
                                row["run"] = run
                                log.info("%s", row)
                                rows.append(row)
            finally:
                asyncio.set_event_loop(loop)
                sys.set_asyncgen_hooks(*hooks)
                runner.run(_close_window(win))
    return rows


def _span(values: list[float], digits: int = 1) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _paired_differences(rows: list[dict], fmt: str, scenario: str) -> list[float]:
    by_run: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["format"] == fmt and r["scenario"] == scenario and r["added_ms"] is not None:
            by_run.setdefault(r["run"], {})[r["path"]] = r["added_ms"]
    return [d["window"] - d["cli"] for d in by_run.values() if "window" in d and "cli" in d]


def summarize_window(rows: list[dict], formats: list[str], scenarios: list[Scenario]) -> str:
    """Markdown table: medians with min–max, and whether the goal holds."""
    lines = ["| scenario | format | added latency, window (ms) | added latency, CLI (ms) | window − CLI, medians (ms) "
             "| window − CLI, run by run (ms) | plot frames/s (paints) | buffer plot frames/s | plot redraws/s "
             "| CPU window "
             "| CPU window, GUI thread | CPU CLI | audio played, underruns |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for scenario in scenarios:
        for fmt in formats:
            sel = [r for r in rows if r["format"] == fmt and r["scenario"] == scenario.name]
            win = [r for r in sel if r["path"] == "window"]
            cli = [r for r in sel if r["path"] == "cli"]
            diff = _paired_differences(rows, fmt, scenario.name)
            lat_w = [r["added_ms"] for r in win if r["added_ms"] is not None]
            lat_c = [r["added_ms"] for r in cli if r["added_ms"] is not None]
            fps = [r["fps"] for r in win if r["fps"] is not None]
            buffer_fps = [r["buffer_fps"] for r in win if r.get("buffer_fps") is not None]
            redraws = [r["redraws_per_s"] for r in win if r["redraws_per_s"] is not None]
            played = min((r["played_share"] for r in sel), default=0.0) * 100
            under = sum(r["underruns"] for r in sel)
            errors = [r["error"] for r in sel if r["error"]]
            note = f"; {len(errors)} errors: {errors[0]}" if errors else ""
            gap = statistics.median(lat_w) - statistics.median(lat_c) if lat_w and lat_c else None
            gap_text = f"{gap:+.1f}" if gap is not None else "n/a"
            lines.append(f"| {scenario.name} | {fmt} | {_span(lat_w)} | {_span(lat_c)} | {gap_text} | {_span(diff)} | "
                         f"{_span(fps, 0)} | {_span(buffer_fps, 0)} | {_span(redraws, 0)} | "
                         f"{_span([r['cpu_pct'] for r in win])}% | "
                         f"{_span([r['gui_cpu_pct'] for r in win])}% | {_span([r['cpu_pct'] for r in cli])}% | "
                         f"{played:.1f}% (lowest), {under}{note} |")
            if gap is not None:
                verdicts.append(gap <= GOAL_MS)
    met = "met" if verdicts and all(verdicts) else "NOT met"
    lines.append("")
    lines.append(f"Goal (window median − CLI median ≤ {GOAL_MS:.0f} ms in every row): **{met}**. Medians with "
                 "min–max in brackets; run by run = window minus the CLI run next to it.")
    return "\n".join(lines)


def write_window_readme(path: Path, table: str, command: str, platform: str) -> None:
    """Replace this Qt platform's block between its markers; a missing block goes after the last block of
    the "### Window" section (or after that heading, or at the end)."""
    text = path.read_text()
    begin, end = README_BEGIN.format(platform=platform), README_END.format(platform=platform)
    block = (f"{begin}\nMeasured {time.strftime('%Y-%m-%d')} with `{command}` (Qt platform `{platform}`) on "
             f"{machine_summary()}, audio through a PulseAudio null sink.\n\n{table}\n{end}")
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    else:
        ends = [m.end() for m in re.finditer(r"<!-- bench-window:\w+:end -->", text)]
        heading = text.find("### Window\n")
        at = ends[-1] if ends else (heading + len("### Window\n") if heading >= 0 else len(text))
        text = text[:at] + f"\n\n{block}\n" + text[at:]
    path.write_text(text)


def run_window_bench(args: argparse.Namespace) -> int:
    """`voicegui bench --window`: uses args.runs, seconds, write_bytes, formats (pcm,mp3 unless narrowed),
    scenarios (1,2 unless narrowed; 3 is allowed), readme, json."""
    formats = args.formats or list(WINDOW_FORMATS)
    scenarios = args.scenarios or list(WINDOW_SCENARIOS)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        # A benchmark on a server with no screen: Qt's offscreen platform still paints every frame.
        log.warning("no display: the window is measured on Qt's offscreen platform")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    rows = bench_rows(args.runs, args.seconds, args.write_bytes, formats, scenarios)
    table = summarize_window(rows, formats, scenarios)
    print(json.dumps(rows, indent=1) if args.json else table)
    if args.readme is not None:
        from PySide6.QtGui import QGuiApplication

        write_window_readme(args.readme, table,
                            f"voicegui bench --window --runs {args.runs} --seconds {args.seconds}",
                            QGuiApplication.platformName())
    return EXIT_OK
