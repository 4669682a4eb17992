"""`voicegui bench` end to end: a real replay server, real sessions on the null sink, the table and README."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from voicegui.cli.bench import (
    NO_MONITOR,
    README_BEGIN,
    README_END,
    SCENARIOS,
    cpu_ticks,
    p50_p95,
    percentile,
    start_sink_recorder,
    summarize,
)
from voicegui.cli.bench_sink import SinkRecorder, SinkRecorderError, StampedBlocks


def _bench(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicegui", "bench", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_bench_measures_each_format_and_writes_the_readme(tmp_path: Path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n## Benchmarks\n\n{README_BEGIN}\nold figures\n{README_END}\n\n## After\n")
    proc = _bench("--runs", "1", "--seconds", "1", "--formats", "pcm,flac", "--scenarios", "1",
                  "--readme", str(readme))
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| pcm") or line.startswith("| flac")]
    assert len(rows) == 2, proc.stdout
    text = readme.read_text()
    assert "old figures" not in text and "| flac | 1 cold |" in text and text.endswith("## After\n")
    assert "at the sink, p50 / p95 (ms)" in text


@pytest.mark.played_clock  # where audio lands at the sink, timed on the wall clock (added_ms < 1000)
def test_bench_json_rows_are_measurements():
    proc = _bench("--runs", "2", "--seconds", "1", "--formats", "mp3", "--scenarios", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 2
    assert [row["cold"] for row in rows] == [True, False]  # the first run of mp3 in the process, then one more
    for row in rows:
        assert row["format"] == "mp3" and row["error"] is None
        assert row["played_share"] == pytest.approx(1.0, abs=0.01)
        # measured, not made up: positive and well under the clip's length
        assert 0 < row["added_ms"] < 1000
        # recorded from the test null sink's monitor: there, and not before the server's first byte
        assert row["sink_ms"] is not None and row["sink_ms"] > 0


def test_bench_without_the_monitor_source_says_n_a_and_still_runs():
    proc = _bench("--runs", "1", "--seconds", "1", "--formats", "pcm", "--scenarios", "1",
                  "--sink-monitor", "no.such.monitor")
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| pcm"))
    assert NO_MONITOR in row and "n/a" not in row.replace(NO_MONITOR, "")  # the PortAudio figure is there
    lines = [line for line in proc.stderr.splitlines() if line.startswith("voicegui bench:")]
    assert len(lines) == 1 and "'no.such.monitor'" in lines[0] and "--sink-monitor" in lines[0], proc.stderr


def test_sink_recorder_without_parec_says_so_in_one_line(tmp_path: Path, monkeypatch, capsys):
    import shutil

    (tmp_path / "pactl").symlink_to(shutil.which("pactl"))  # the source is found; parec is not there
    monkeypatch.setenv("PATH", str(tmp_path))
    recorder, note = start_sink_recorder(None)
    assert recorder is None and note is not None and note.startswith("n/a")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "parec is not installed" in err[0] and "pulseaudio-utils" in err[0]


def test_sink_recorder_on_a_missing_source_gives_parecs_reason():
    with pytest.raises(SinkRecorderError, match=r"parec could not record 'no.such.monitor': .*No such entity"):
        SinkRecorder("no.such.monitor").start()


def test_percentiles_interpolate_between_ranks():
    assert percentile([50.0, 10.0, 40.0, 20.0, 30.0], 50) == 30.0
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 95) == pytest.approx(48.0)
    assert percentile([10.0, 20.0], 50) == 15.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    assert p50_p95([10.0, 20.0, 30.0, 40.0, 50.0]) == "30.0 / 48.0" and p50_p95([]) == "n/a"


def test_summary_separates_cold_and_warm_runs_and_says_why_the_sink_is_missing():
    row = {"format": "mp3", "scenario": SCENARIOS[0].name, "played_share": 1.0, "underruns": 0, "cpu_pct": 5.0,
           "error": None}
    rows = [dict(row, cold=True, added_ms=90.0, sink_ms=100.0)] + [
        dict(row, cold=False, added_ms=float(ms), sink_ms=ms + 10.0) for ms in (10, 20, 30, 40, 50)]
    lines = summarize(rows, ["mp3"], [SCENARIOS[0]]).splitlines()
    assert "| mp3 | 1 cold | 90.0 / 90.0 | 100.0 / 100.0 |" in " ".join(lines)
    assert "| mp3 | 5 warm | 30.0 / 48.0 | 40.0 / 58.0 |" in " ".join(lines)
    without = summarize(rows, ["mp3"], [SCENARIOS[0]], sink_na=NO_MONITOR)
    assert f"| mp3 | 5 warm | 30.0 / 48.0 | {NO_MONITOR} |" in without


def test_each_recorded_sample_gets_its_own_time():
    blocks = StampedBlocks(rate=1000, keep_s=1.0)
    quiet, loud = np.zeros(100, dtype=np.int16), np.zeros(100, dtype=np.int16)
    loud[[20, 60]] = 5000
    blocks.add(10.0, quiet)
    blocks.add(10.1, loud)  # its last sample (99) at 10.1, sample 20 at 10.1 - 79 ms
    assert blocks.first_above(9.0, 0.01) == pytest.approx(10.021)
    assert blocks.first_above(10.03, 0.01) == pytest.approx(10.061)  # after t0, not the block's first
    assert blocks.first_above(10.07, 0.01) is None
    assert blocks.first_above(9.0, 0.5) is None  # 5000 is under half of full scale
    for t in (10.2, 10.3, 10.4, 10.5, 10.6, 10.7, 10.8, 10.9, 11.0, 11.1):  # a second of quiet pushes it out
        blocks.add(t, quiet)
    assert blocks.first_above(9.0, 0.01) is None


def test_bench_runs_the_delivery_patterns_of_issue_17():
    # per-write jitter after a 150 ms first byte, 300 ms bursts, a slow start: each plays the whole clip
    proc = _bench("--runs", "1", "--seconds", "1", "--formats", "mp3", "--scenarios", "4,5,6", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["scenario"] for r in rows] == [SCENARIOS[3].name, SCENARIOS[4].name, SCENARIOS[5].name]
    for row in rows:
        assert row["error"] is None and row["played_share"] == pytest.approx(1.0, abs=0.01)
        assert row["added_ms"] > 0


@pytest.mark.parametrize("args,message", [
    (["--formats", "mp3,ogg"], "unknown format(s)"),
    (["--scenarios", "8"], "expected scenario numbers 1-7"),
    (["--scenarios", "two"], "expected scenario numbers 1-7"),
    (["--runs", "0"], "must be > 0"),
])
def test_bench_bad_arguments_say_what_is_wrong(args, message):
    proc = _bench(*args, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_bench_without_an_audio_device_says_so_in_one_line(tmp_path: Path):
    """No reachable sound server: one sentence and exit 1, not an IndexError from an empty request log."""
    import os

    res = subprocess.run([sys.executable, "-m", "voicegui", "bench", "--formats", "pcm", "--scenarios", "1",
                          "--runs", "1", "--seconds", "1"], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PULSE_SERVER=f"unix:{tmp_path / 'no-such-socket'}"))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith("voicegui bench:")]
    assert len(lines) == 1 and "audio output device" in lines[0], res.stderr


def _burn(cpu_s: float, then: threading.Event | None = None) -> None:
    """Use `cpu_s` of this thread's own CPU time (however busy the machine), then wait for `then` if given."""
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass
    if then is not None:
        then.wait()


def _cpu_s(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def test_cpu_ticks_count_a_thread_that_ended_before_the_second_reading() -> None:
    # PortAudio's callback thread ends when a Speak closes its stream: its CPU belongs to the Speak.
    before = cpu_ticks(None)
    worker = threading.Thread(target=_burn, args=(0.3,))
    worker.start()
    worker.join()
    assert _cpu_s(cpu_ticks(None) - before) >= 0.25


def test_cpu_ticks_leave_out_the_excluded_threads() -> None:
    done = threading.Event()
    server = threading.Thread(target=_burn, args=(0.3, done))
    before = cpu_ticks(None)
    server.start()
    try:
        while server.native_id is None:
            time.sleep(0.001)
        excluded_before = cpu_ticks(server.native_id)
        while not done.is_set() and _cpu_s(cpu_ticks(None) - before) < 0.3:
            time.sleep(0.01)
        assert _cpu_s(cpu_ticks(server.native_id) - excluded_before) < 0.1
    finally:
        done.set()
        server.join()
