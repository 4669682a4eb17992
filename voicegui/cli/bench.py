"""`voicegui bench`: added latency, completeness and underruns per format, against the built-in server.

Added latency is measured twice per run, from the server's first body byte: to the first non-silent sample
handed to PortAudio (the session's mark), and to the first sound the sink played, recorded from its monitor
source (bench_sink.SinkRecorder, default `nullsink.monitor`, which `make bench` provides). The table gives
both as p50 / p95 with the number of runs, cold and warm apart: cold is the first run of each format in the
process (the output device opened for it, that format's decoder used for the first time; pcm's cold run
follows the unmeasured warm-up run, which plays pcm), warm the others (the output stream kept open by the
Player, as between two Speaks in the window).

Threads: the replay server runs on its own loop in a daemon thread (ServerThread); the sessions run on this
thread's asyncio loop; PortAudio's callback thread plays; the sink recorder reads parec in a daemon thread.
All marks use time.monotonic(), one clock for the server's "first byte sent", the output's "first non-silent
sample handed to the device" and the sink's "first sound played".

CPU share is read from /proc for every thread of this process except the server's and the sink recorder's, so
it is the streaming pipeline's own cost (fetch, decode, ring, callback, monitor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicegui.cli.args import EXIT_FAILED, EXIT_OK, positive_float, positive_int, terminal_safe
from voicegui.cli.bench_sink import DEFAULT_MONITOR, SinkRecorder, SinkRecorderError, monitor_sources
from voicegui.formats import FORMATS
from voicegui.server.benchclip import speech_like, write_clip
from voicegui.server.shaping import Shaping

if TYPE_CHECKING:  # imported where used: `voicegui bench --help` must not load the streaming stack
    from voicegui.stream.metrics import SessionMetrics
    from voicegui.stream.player import Player
    from voicegui.stream.session import SpeakOptions

log = logging.getLogger(__name__)

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
NO_MONITOR = "n/a (no monitor source)"


@dataclass(frozen=True)
class Scenario:
    """One delivery pattern of the built-in server (see server/shaping.py) and the prebuffer to play it with."""

    name: str
    throughput_x: float
    jitter_s: float
    prebuffer_ms: float | None  # None: auto
    first_byte_delay_s: float = 0.0
    burst_s: float = 0.0
    slow_start_s: float = 0.0
    slow_start_x: float = 0.5

    def shaping(self, write_bytes: int, seed: int) -> Shaping:
        return Shaping(throughput_x=self.throughput_x, jitter_s=self.jitter_s, write_bytes=write_bytes, seed=seed,
                       first_byte_delay_s=self.first_byte_delay_s, burst_s=self.burst_s,
                       slow_start_s=self.slow_start_s, slow_start_x=self.slow_start_x)


SCENARIOS = (
    Scenario("prebuffer 0 ms, 2x real time", 2.0, 0.0, 0.0),
    Scenario("auto prebuffer, 2x real time", 2.0, 0.0, None),
    Scenario("auto prebuffer, 1x real time + 100 ms jitter", 1.0, 0.1, None),
    # The pattern issue 17 measured: every write independently 0-100 ms late, after a server that thinks first.
    Scenario("auto prebuffer, 1x real time, 150 ms first byte, per-write jitter 0-100 ms", 1.0, 0.1, None,
             first_byte_delay_s=0.15),
    Scenario("auto prebuffer, 1x real time in 300 ms bursts", 1.0, 0.0, None, burst_s=0.3),
    Scenario("auto prebuffer, slow start: first 1 s at 0.7x, then 1.5x", 1.5, 0.0, None, slow_start_s=1.0,
             slow_start_x=0.7),
    # A server slower than real time all along (a big voice on a small machine): the wait is the price of no gap.
    Scenario("auto prebuffer, 0.8x real time throughout", 0.8, 0.0, None),
)


def format_list(value: str) -> list[str]:
    """argparse type: "mp3, flac" -> ["mp3", "flac"], each one of FORMATS."""
    formats = [f.strip() for f in value.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"unknown format(s) {', '.join(bad) or value!r}; expected some of "
                                         f"{','.join(FORMATS)}")
    return formats


def scenario_list(value: str) -> list[Scenario]:
    """argparse type: "1,3" -> those SCENARIOS (numbered from 1), or "all"."""
    if value.strip() == "all":
        return list(SCENARIOS)
    try:
        numbers = [int(i) for i in value.split(",")]
    except ValueError:
        numbers = []
    if not numbers or not all(1 <= n <= len(SCENARIOS) for n in numbers):
        raise argparse.ArgumentTypeError(f"{value!r}: expected scenario numbers 1-{len(SCENARIOS)}, "
                                         "comma-separated, or all")
    return [SCENARIOS[n - 1] for n in numbers]


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=positive_int, default=5, help="runs per format and scenario (default 5)")
    p.add_argument("--formats", type=format_list, default=None,
                   help=f"comma-separated formats (default: {','.join(FORMATS)}; with --window: pcm,mp3)")
    p.add_argument("--seconds", type=positive_float, default=3.0, help="clip length in seconds (default 3)")
    p.add_argument("--scenarios", type=scenario_list, default=None,
                   help="comma-separated scenario numbers, 1-" + str(len(SCENARIOS)) + ": "
                        + "; ".join(f"{i}: {sc.name}" for i, sc in enumerate(SCENARIOS, 1))
                        + " (default: all; with --window: 1,2)")
    p.add_argument("--write-bytes", type=positive_int, default=1024, help="server write size (default 1024)")
    p.add_argument("--readme", type=Path, default=None, help="write the results into this README's Benchmarks section")
    p.add_argument("--json", action="store_true", help="print the raw rows as JSON")
    p.add_argument("--sink-monitor", metavar="SOURCE", default=None,
                   help=f"PulseAudio monitor source to record what the sink played (default: {DEFAULT_MONITOR} "
                        "when it exists; see `pactl list short sources`); the format bench only")
    p.add_argument("--window", action="store_true",
                   help="instead: a Speak in the real window next to the same Speak from the CLI path (pcm, mp3): "
                        "added latency, plot frame rate, CPU")
    p.add_argument("--builtin", action="store_true",
                   help="instead: the built-in voices, speak -> first sound for one sentence, and each engine's "
                        "real-time factor")


def cpu_ticks(exclude_tid: int | None, also_exclude: tuple[int, ...] = ()) -> int:
    """CPU clock ticks used so far by this process, less what the threads `exclude_tid` and `also_exclude` used.

    The process's own figure (/proc/self/stat) includes threads that have ended: PortAudio's callback thread and
    the sound server's client thread end when a Speak closes its stream, so a sum over the threads alive at
    the second reading left them out (the CLI runs of `--window` read ~5 % where they used ~12 %). The
    excluded threads (the bench's server, the sink recorder) must live across both readings."""
    total = _ticks(Path("/proc/self/stat").read_text())
    for tid in {exclude_tid, *also_exclude} - {None}:
        try:
            total -= _ticks(Path(f"/proc/self/task/{tid}/stat").read_text())
        except OSError:
            continue  # the thread has ended: nothing of it to take out at this reading
    return total


def _ticks(stat: str) -> int:
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class BenchAborted(Exception):
    """A run failed in a way every later run would too (no audio device, ...): the bench stops with this."""


async def _play(options: SpeakOptions, player: Player | None = None) -> SessionMetrics:
    """One run through `player` (default: a new one), as the window and `voicegui speak` play: its metrics.

    Raises BenchAborted when the audio device could not be used: every further run would fail the same way,
    and a table of failed runs would measure nothing."""
    from voicegui.stream.player import Player

    playback = await (player or Player()).play(options, kind="bench", record=False)
    if playback is None or playback.metrics is None:
        raise BenchAborted(playback.failure if playback is not None and playback.failure else
                           "the run did not start")
    if playback.metrics.error_kind == "device":
        raise BenchAborted(playback.metrics.error or "the audio device could not be used")
    return playback.metrics


async def run_once(server, fmt: str, scenario: Scenario, text: str, clip_frames: int, seed: int,
                   write_bytes: int, *, player: Player | None = None, sink: SinkRecorder | None = None,
                   cold: bool = False) -> dict:
    """One measured run on `player` (default: a new one, so a device opened for it); with `sink`, also when
    the sink first sounded. `cold` labels the row (the caller makes it so)."""
    from voicegui.stream.fetch import SpeechRequest
    from voicegui.stream.session import SpeakOptions

    server.shaping = scenario.shaping(write_bytes, seed)
    request = SpeechRequest(base_url=server.base_url, api_key=server.token or "bench", model="tts-1",
                            voice="alloy", text=text, response_format=fmt)
    options = SpeakOptions(request=request, prebuffer_ms=scenario.prebuffer_ms)
    others = (sink.reader_id,) if sink is not None and sink.reader_id is not None else ()
    ticks0, wall0 = cpu_ticks(server.native_id, others), time.monotonic()
    metrics = await _play(options, player)
    ticks1, wall1 = cpu_ticks(server.native_id, others), time.monotonic()
    record = server.records[-1]
    first_byte = record.first_byte_sent_at
    first_sound = metrics.marks.first_sound
    added = sink_ms = None
    if first_sound is not None and first_byte is not None:
        added = (first_sound - first_byte) * 1000
    if sink is not None and first_byte is not None:
        # From the request's arrival: the previous run has played out by then (the Player awaited its end),
        # so a sound after it is this run's.
        at_sink = await _sink_sound(sink, record.received_at)
        sink_ms = None if at_sink is None else (at_sink - first_byte) * 1000
    rate = metrics.sample_rate or 24000
    return {
        "format": fmt,
        "scenario": scenario.name,
        "cold": cold,
        "added_ms": added,
        "sink_ms": sink_ms,
        "played_share": min(1.0, metrics.audio_played_s * rate / clip_frames) if clip_frames else 0.0,
        "underruns": metrics.underrun_episodes,
        "cpu_pct": (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (wall1 - wall0) * 100,
        "error": metrics.error,
    }


SINK_WAIT_S = 1.0  # how long after a run the sink may still be catching up with the recorder


async def _sink_sound(sink: SinkRecorder, t0: float) -> float | None:
    """The sink's first sound after t0; the recorder's last blocks may still be on their way."""
    deadline = time.monotonic() + SINK_WAIT_S
    while (found := sink.first_sound_after(t0)) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return found


def start_sink_recorder(source: str | None) -> tuple[SinkRecorder | None, str | None]:
    """(the recorder, None), or (None, what the sink column says instead) after one line on stderr saying why.

    `source` None: DEFAULT_MONITOR, if the sound server has it."""
    name = source or DEFAULT_MONITOR
    try:
        if name not in monitor_sources():
            print(f"voicegui bench: no PulseAudio source {terminal_safe(name)!r} to record the sink from, so the "
                  "sink column is n/a; name one with --sink-monitor SOURCE (see `pactl list short sources`)",
                  file=sys.stderr)
            return None, NO_MONITOR
        recorder = SinkRecorder(name)
        recorder.start()
    except SinkRecorderError as exc:
        print(f"voicegui bench: the sink recorder cannot start: {terminal_safe(str(exc))}; the sink column is "
              "n/a", file=sys.stderr)
        return None, "n/a (no recorder)"
    return recorder, None


async def _bench(args: argparse.Namespace, formats: list[str],
                 scenarios: list[Scenario]) -> tuple[list[dict], str | None]:
    """The rows, and what the sink column says when the sink was not recorded (None: it was)."""
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread
    from voicegui.stream.player import Player

    rows = []
    sink: SinkRecorder | None = None
    sink_na: str | None = None
    player = Player()  # one, as the window has: warm runs reuse its kept output stream
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip.wav", args.seconds)
        clip_frames = len(speech_like(args.seconds))
        text = ("This is a sentence of about the clip's length. " * 10)[: int(args.seconds * 15)]
        with ServerThread(ReplayEngine(clip)) as server:
            seen: set[str] = set()
            try:
                # One unmeasured run first: a sound server's first stream can stall (PulseAudio: ~2 s).
                await run_once(server, "pcm", SCENARIOS[0], text, clip_frames, seed=0,
                               write_bytes=args.write_bytes, player=player)
                # After the warm-up: without an output device the bench has stopped with that one message.
                sink, sink_na = await asyncio.to_thread(start_sink_recorder, args.sink_monitor)
                for scenario in scenarios:
                    for fmt in formats:
                        for run in range(args.runs):
                            cold = fmt not in seen
                            seen.add(fmt)
                            if cold:  # the device is opened for this run, as for a first Speak
                                await asyncio.to_thread(player.output.close)
                            row = await run_once(server, fmt, scenario, text, clip_frames, seed=run,
                                                 write_bytes=args.write_bytes, player=player, sink=sink, cold=cold)
                            log.info("%s", row)
                            rows.append(row)
            finally:
                await player.close()
                if sink is not None:
                    await asyncio.to_thread(sink.stop)
    return rows, sink_na


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) of `values`, interpolated linearly between the two nearest ranks (numpy's
    default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def p50_p95(values: list[float]) -> str:
    """"p50 / p95" in ms, or "n/a" for no values."""
    if not values:
        return "n/a"
    return f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f}"


def summarize(rows: list[dict], formats: list[str], scenarios: list[Scenario], sink_na: str | None = None) -> str:
    """The Markdown table, one per scenario, a line per format and cold/warm; `sink_na`: what the sink column
    says when nothing was recorded."""
    lines = []
    for scenario in scenarios:
        lines.append(f"**{scenario.name}**\n")
        lines.append("| format | runs | added latency at PortAudio, p50 / p95 (ms) | at the sink, p50 / p95 (ms) "
                     "| audio played | underruns (runs with any) | CPU, one core |")
        lines.append("|---|---|---|---|---|---|---|")
        for fmt in formats:
            for kind, cold in (("cold", True), ("warm", False)):
                sel = [r for r in rows if r["format"] == fmt and r["scenario"] == scenario.name
                       and r.get("cold", False) == cold]
                if not sel:
                    continue
                lat = [r["added_ms"] for r in sel if r["added_ms"] is not None]
                at_sink = [r["sink_ms"] for r in sel if r.get("sink_ms") is not None]
                errors = [r["error"] for r in sel if r["error"]]
                share = min(r["played_share"] for r in sel) * 100
                under = sum(r["underruns"] for r in sel)
                with_under = sum(1 for r in sel if r["underruns"])
                cpu = statistics.median(r["cpu_pct"] for r in sel)
                note = f" ({len(errors)} errors: {errors[0]})" if errors else ""
                sink_cell = sink_na if sink_na is not None else p50_p95(at_sink)
                lines.append(f"| {fmt} | {len(sel)} {kind} | {p50_p95(lat)} | {sink_cell} "
                             f"| {share:.1f}% (lowest run) | {under} ({with_under}/{len(sel)}) | {cpu:.1f}%{note} |")
        lines.append("")
    lines.append("Added latency: from the server's first body byte to the first non-silent sample handed to "
                 "PortAudio, and to the first sound the sink played (its monitor recorded with parec; up to "
                 "~10 ms late). Cold: the first run of each format (output device opened, decoder first used); "
                 "warm: the others, on the kept output stream.\n")
    return "\n".join(lines)


def machine_summary() -> str:
    cpu = "unknown CPU"
    try:
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = match.group(1).strip() if match else cpu
    except OSError:
        pass
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
            f"Python {platform.python_version()}")


def write_readme(path: Path, table: str, command: str) -> None:
    text = path.read_text()
    block = (f"{README_BEGIN}\nMeasured {time.strftime('%Y-%m-%d')} with `{command}` on {machine_summary()}, "
             f"audio through a PulseAudio null sink.\n\n{table}\n{README_END}")
    if README_BEGIN in text:
        text = re.sub(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), lambda _m: block, text, flags=re.S)
    else:
        text += f"\n## Benchmarks\n\n{block}\n"
    path.write_text(text)


BUILTIN_SENTENCE = "The quick brown fox jumps over the lazy dog."
BUILTIN_PARAGRAPH = (
    "Speech synthesis has come a long way. Voices that once sounded robotic now breathe and pause. "
    "This paragraph is long enough to measure how fast each engine speaks compared with real time. "
    "Every sentence is synthesised while the previous one is already being sent."
)


async def _bench_builtin(args: argparse.Namespace) -> list[dict]:
    """Speak (session start) -> first sound for one sentence, per built-in voice; and each engine's speed."""
    from voicegui.server.embedded import BuiltinServer
    from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech
    from voicegui.stream.session import SpeakOptions

    async def discard(_data: bytes) -> None:
        return None

    rows = []
    with BuiltinServer() as server:
        voices: dict[str, str] = {}
        for info in server.voices():  # one voice per engine: the first (best) it lists
            voices.setdefault(info.engine, info.id)
        for engine, voice in voices.items():
            for run in range(args.runs + 1):
                request = SpeechRequest(base_url=server.base_url, api_key=server.token, model=server.default_model,
                                        voice=voice, text=BUILTIN_SENTENCE, response_format="pcm")
                metrics = await _play(SpeakOptions(request=request))
                if run == 0:
                    continue  # warm-up: the first request pays for lazy initialisation
                rows.append({"engine": engine, "voice": voice, "kind": "ttfa", "ttfa_ms": metrics.ttfa_ms,
                             "error": metrics.error})
            # Real-time factor: audio seconds produced per wall second, as fast as the server can go.
            request = SpeechRequest(base_url=server.base_url, api_key=server.token, model=server.default_model,
                                    voice=voice, text=BUILTIN_PARAGRAPH, response_format="pcm")
            await fetch_speech(request, FetchMarks(), discard)
            rec = server.records[-1]
            wall = (rec.ended_at or time.monotonic()) - rec.received_at
            rows.append({"engine": engine, "voice": voice, "kind": "rtf", "audio_s": rec.audio_s,
                         "rtf": rec.audio_s / wall if wall > 0 else None})
    return rows


def summarize_builtin(rows: list[dict]) -> str:
    lines = ["| engine (voice) | speak -> first sound, median (ms) | min–max (ms) | real-time factor |",
             "|---|---|---|---|"]
    for engine in dict.fromkeys(r["engine"] for r in rows):
        ttfa = [r["ttfa_ms"] for r in rows if r["engine"] == engine and r["kind"] == "ttfa" and r["ttfa_ms"]]
        rtf = [r["rtf"] for r in rows if r["engine"] == engine and r["kind"] == "rtf" and r["rtf"]]
        voice = next(r["voice"] for r in rows if r["engine"] == engine)
        med = f"{statistics.median(ttfa):.0f}" if ttfa else "n/a"
        span = f"{min(ttfa):.0f}–{max(ttfa):.0f}" if ttfa else "n/a"
        lines.append(f"| {engine} ({voice}) | {med} | {span} | {rtf[0]:.0f}x |" if rtf else
                     f"| {engine} ({voice}) | {med} | {span} | n/a |")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    try:
        return _run_bench(args)
    except BenchAborted as exc:
        print(f"voicegui bench: {terminal_safe(str(exc))}", file=sys.stderr)
        return EXIT_FAILED


def _run_bench(args: argparse.Namespace) -> int:
    if args.builtin:
        rows = asyncio.run(_bench_builtin(args))
        print(json.dumps(rows, indent=1) if args.json else summarize_builtin(rows))
        return EXIT_OK
    formats = args.formats or list(FORMATS)
    scenarios = args.scenarios or list(SCENARIOS)
    rows, sink_na = asyncio.run(_bench(args, formats, scenarios))
    table = summarize(rows, formats, scenarios, sink_na)
    print(json.dumps(rows, indent=1) if args.json else table)
    if args.readme is not None:
        write_readme(args.readme, table, f"voicegui bench --runs {args.runs} --seconds {args.seconds}")
    return EXIT_OK
