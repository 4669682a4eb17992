"""`voicegui bench --window` end to end, one run: the real window and the CLI path both speak and are measured.

A plain (sync) test: bench_window runs its own qasync loop, as the command does; audio goes to the
PulseAudio null sink started by tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from voicegui.cli.bench import SCENARIOS
from voicegui.cli.bench_window import README_BEGIN, README_END, bench_rows, summarize_window, write_window_readme

pytestmark = pytest.mark.played_clock  # the bench times where audio lands (added_ms < 500)


def test_window_bench_one_run(tmp_path: Path) -> None:
    rows = bench_rows(runs=1, seconds=1.0, write_bytes=1024, formats=["pcm"], scenarios=[SCENARIOS[0]])
    assert [r["path"] for r in rows] == ["window", "cli"]
    for row in rows:
        assert row["error"] is None
        assert row["added_ms"] is not None and 0 <= row["added_ms"] < 500
        assert row["played_share"] > 0.95
        assert row["cpu_pct"] > 0
    window = rows[0]
    assert 0 < window["gui_cpu_pct"] <= window["cpu_pct"] + 5  # one thread of those the process share counts
    assert window["fps"] is not None and window["fps"] > 5  # the plots repainted while it spoke
    assert window["buffer_fps"] is not None and window["buffer_fps"] > 5  # the buffer plot too, counted apart
    assert window["redraws_per_s"] is not None and window["redraws_per_s"] > 5

    table = summarize_window(rows, ["pcm"], [SCENARIOS[0]])
    assert "| prebuffer 0 ms, 2x real time | pcm |" in table and "Goal" in table
    readme = tmp_path / "README.md"
    begin, end = README_BEGIN.format(platform="offscreen"), README_END.format(platform="offscreen")
    readme.write_text(f"# x\n\n### Window\n\nintro\n\n{begin}\nold\n{end}\n\n## Next\n")
    write_window_readme(readme, table, "voicegui bench --window --runs 1", "offscreen")
    write_window_readme(readme, "xcb table", "voicegui bench --window --runs 1", "xcb")  # a new block: after it
    text = readme.read_text()
    assert "old" not in text and table in text and text.endswith("## Next\n")
    assert text.index(end) < text.index("xcb table") < text.index("## Next")
