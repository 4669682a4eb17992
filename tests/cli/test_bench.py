"""`voicegui bench` end to end: a real replay server, real sessions on the null sink, the table and README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.cli.bench import README_BEGIN, README_END, SCENARIOS


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
    assert "old figures" not in text and "| flac |" in text and text.endswith("## After\n")


def test_bench_json_rows_are_measurements():
    proc = _bench("--runs", "2", "--seconds", "1", "--formats", "mp3", "--scenarios", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 2
    for row in rows:
        assert row["format"] == "mp3" and row["error"] is None
        assert row["played_share"] == pytest.approx(1.0, abs=0.01)
        # measured, not made up: positive and well under the clip's length
        assert 0 < row["added_ms"] < 1000


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
    (["--scenarios", "7"], "expected scenario numbers 1-6"),
    (["--scenarios", "two"], "expected scenario numbers 1-6"),
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
