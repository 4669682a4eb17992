"""The start-up harness (voicegui/ui/startup_bench.py) on one real launch of the window: it reads when the
window was shown and the default voice ready from the app's log, and the idle memory from /proc. No figure
is asserted against a goal (machines are noisy): only that each was measured, in the order they happen."""

from __future__ import annotations

from voicegui.ui.startup_bench import launch_once, summarize


def test_one_launch_is_measured(monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    row = launch_once(idle_s=0.0, cache=tmp_path / "cache")
    assert row["error"] is None, row
    assert 0 < row["window_s"] <= row["voices_s"]
    assert row["rss_mb"] > 0
    assert list((tmp_path / "cache" / "engines").glob("hibari-g2p-*/*.npy"))  # what the next launch maps
    table = summarize([row], 0.0, first=row)
    assert "window shown" in table and "first launch (empty cache)" in table and "n/a" not in table


def test_a_window_already_open_does_not_take_the_launch_over(monkeypatch, tmp_path):
    """The launch runs in a runtime directory of its own: a window open in this test run's (one window per
    user) must not take it over, which would end the launch at once."""
    import subprocess
    import sys

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setenv("VOICEGUI_CONFIG_DIR", str(tmp_path / "config-open"))
    opened = subprocess.Popen([sys.executable, "-m", "voicegui", "-v"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert opened.stderr is not None
        for line in opened.stderr:  # the open window holds this run's socket once it logs this
            if "listening for other voicegui commands" in line:
                break
        row = launch_once(idle_s=0.0, cache=tmp_path / "cache")
    finally:
        opened.terminate()
        opened.wait(15)
    assert row["error"] is None, row


def test_a_failed_run_is_reported_not_averaged():
    rows = [{"window_s": 0.5, "voices_s": None, "rss_mb": None, "error": "built-in voices unavailable: x"}]
    table = summarize(rows, 5.0)
    assert "1 of 1 runs failed, first: built-in voices unavailable: x" in table
    assert "| default voice ready (s after launch) | n/a |" in table
