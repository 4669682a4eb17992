"""`voicegui` (the window) where no window can be opened: one sentence and exit code 1, never Qt's abort.

Each case starts the real command in a process of its own, with the display variables of that case and a
private runtime directory (so no running window takes the command instead); Qt really tries its platforms.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voicegui.ui.display import WAYS_OUT, missing_display, platform_failure

QT_FATAL = ("This application failed to start because no Qt platform plugin could be initialized. Reinstalling "
            "the application may fix this problem.\n\nAvailable platform plugins are: minimal, offscreen, xcb.\n")


def _free_x_display() -> str:
    """A display number no X server listens on here."""
    number = 4711
    while Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
        number += 1
    return f":{number}"


def _window(tmp_path: Path, **display: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items()
           if name not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(display, VOICEGUI_RUNTIME_DIR=str(tmp_path / "run"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run([sys.executable, "-m", "voicegui"], capture_output=True, text=True, timeout=60, env=env)


def _said_once(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)  # not -SIGABRT
    assert result.returncode != -signal.SIGABRT
    lines = [line for line in result.stderr.splitlines() if line.startswith("voicegui: ")]
    assert len(lines) == 1, result.stderr
    assert "Reinstalling the application" not in result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_no_display_at_all_is_said_before_qt_starts(tmp_path: Path) -> None:
    result = _window(tmp_path)
    said = _said_once(result)
    assert "there is no display ($DISPLAY and $WAYLAND_DISPLAY are unset)" in said
    assert "xvfb-run -a voicegui" in said and "voicegui speak" in said
    assert "qt.qpa" not in result.stderr


def test_a_display_nobody_serves_is_named(tmp_path: Path) -> None:
    display = _free_x_display()
    said = _said_once(_window(tmp_path, DISPLAY=display))
    assert f"could not connect to the X display '{display}'" in said
    assert WAYS_OUT in said


def test_a_platform_qt_does_not_have_is_named_with_the_ones_it_has(tmp_path: Path) -> None:
    said = _said_once(_window(tmp_path, QT_QPA_PLATFORM="no-such-platform"))
    assert "Qt has no platform plugin 'no-such-platform'" in said
    assert "offscreen" in said  # one of the plugins Qt listed


@pytest.mark.parametrize("env", [{"DISPLAY": ":0"}, {"WAYLAND_DISPLAY": "wayland-0"}, {"QT_QPA_PLATFORM": "xcb"}])
def test_a_display_or_a_chosen_platform_is_left_to_qt(env: dict[str, str]) -> None:
    assert missing_display(env) is None


def test_a_plugin_that_would_not_load_is_named_with_qts_reason() -> None:
    notes = ["From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the Qt xcb platform plugin.",
             'Could not load the Qt platform plugin "xcb" in "" even though it was found.']
    said = platform_failure(notes, QT_FATAL, {"DISPLAY": ":0"})
    assert said.startswith("cannot open the window: Qt could not start its xcb platform plugin (From 6.5.0, "
                           "xcb-cursor0 or libxcb-cursor0 is needed")
    assert "QT_DEBUG_PLUGINS=1 voicegui" in said


def test_a_wayland_display_that_cannot_be_reached_is_named() -> None:
    notes = ["Failed to create wl_display (No such file or directory)",
             'Could not load the Qt platform plugin "wayland" in "" even though it was found.']
    said = platform_failure(notes, QT_FATAL, {"WAYLAND_DISPLAY": "wayland-9"})
    assert "could not connect to the Wayland display 'wayland-9'" in said
    assert platform_failure(notes, QT_FATAL, {}).count("($WAYLAND_DISPLAY is unset)") == 1
