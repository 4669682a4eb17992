"""`voicegui speak --selection | --clipboard` with no window and nowhere to read from says why in one line.

Real `python -m voicegui` processes in a private runtime directory (no window's socket there, so nothing takes
the request): without $DISPLAY and $WAYLAND_DISPLAY there is no selection to read; under Wayland alone the
command has no focused window, which Wayland requires, and names what works instead. Reading a real X
selection is tested against Xvfb in tests/e2e/test_selection_x11.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.cli.args import EXIT_FAILED, EXIT_USAGE

REPO = Path(__file__).resolve().parents[2]


def speak(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`voicegui speak ARGV` with no display variables but those in `env`."""
    base = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    return subprocess.run([sys.executable, "-m", "voicegui", "speak", *argv], cwd=REPO, env=dict(base, **env),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("flag, what", [("--selection", "the selection"), ("--clipboard", "the clipboard")])
def test_no_display_at_all_is_one_line(runtime, flag, what):
    res = speak(flag)
    assert res.returncode == EXIT_FAILED
    assert res.stderr.splitlines() == [
        f"voicegui: there is no X display or Wayland session to read {what} from ($DISPLAY and $WAYLAND_DISPLAY "
        "are unset): run the command in your desktop session, or give the text as `voicegui speak TEXT`"]
    assert res.stdout == ""


@pytest.mark.parametrize("flag, paste", [("--selection", "wl-paste --primary"), ("--clipboard", "wl-paste")])
def test_wayland_without_x_names_the_window_and_wl_paste(runtime, flag, paste):
    # No compositor is needed: the command must not try (Qt would read an empty clipboard and call it empty).
    res = speak(flag, WAYLAND_DISPLAY="wayland-voicegui-test")
    assert res.returncode == EXIT_FAILED
    [line] = res.stderr.splitlines()
    assert line.startswith(f"voicegui: Wayland hands the {flag[2:]} only to a focused window")
    assert line.endswith(f"keep the voicegui window open, or use `voicegui speak \"$({paste})\"`")


def test_an_x_display_that_cannot_be_reached_is_one_line(runtime):
    # No X server listens on display 4093 here (a unix socket /tmp/.X11-unix/X4093 would be one).
    res = speak("--selection", DISPLAY=":4093")
    assert res.returncode == EXIT_FAILED
    assert res.stderr.splitlines() == [
        "voicegui: cannot read the selection: cannot connect to the X server that $DISPLAY names ($DISPLAY is "
        "':4093'); run the command in your desktop session"]


@pytest.mark.parametrize("argv", [["Some text.", "--selection"], ["--clipboard", "--selection"]])
def test_a_text_and_a_flag_together_are_refused(runtime, argv):
    res = speak(*argv)
    assert res.returncode == EXIT_USAGE
    assert res.stderr.splitlines() == ["voicegui: give exactly one of: a text, --clipboard, --selection"]
