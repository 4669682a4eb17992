"""Issue 19 "Speak from anywhere" on a real X server: `voicegui speak --selection` speaks X11's PRIMARY selection.

Offscreen Qt has no selection at all, so this runs a private Xvfb (a free display number, found with
-displayfd), makes another X client own PRIMARY (a small Qt helper process on the xcb platform, as a text
editor would after the user selected a sentence), and drives a real window process (`python -m voicegui` on
xcb, the built-in offline voices, the PulseAudio null sink) with real `voicegui speak --selection` processes.
What the window spoke is read back from its History file and its log; that it was heard, from the null sink's
monitor. The sentences hold non-ASCII words, so a wrong encoding of the selection shows. An owner that does
not answer (stopped with SIGSTOP, as a hung editor) is named as the cause, and the window goes on working.

One Xvfb and one window serve the whole file (module-scoped). Skipped only when Xvfb is not installed (the
Makefile's APT_RUNTIME installs it, so CI runs this).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.handoff_bench import FIRST_SOUND, READY, WindowProcess
from tests.e2e.monitor import MonitorRecording, sound_segments
from tests.e2e.test_second_instance import history_texts, until
from voicegui.cli.args import EXIT_FAILED, EXIT_USAGE

pytestmark = pytest.mark.audio

XVFB_START_S = 30

# The selection's owner: sets PRIMARY to its first argument (JSON, so any text survives argv), says "owned"
# once the X server has made it the owner, then sets each JSON line read on stdin the same way; it answers
# every request for the selection until it is killed.
OWNER = r"""
import json, sys
from PySide6.QtCore import QSocketNotifier
from PySide6.QtGui import QClipboard, QGuiApplication

app = QGuiApplication(sys.argv[:1])
clipboard = QGuiApplication.clipboard()

def own(text):
    clipboard.setText(text, QClipboard.Mode.Selection)
    if not clipboard.ownsSelection():
        sys.exit("the X server did not make this client the PRIMARY selection's owner")
    print("owned", flush=True)

def on_stdin():
    line = sys.stdin.readline()
    if not line:
        app.quit()
    else:
        own(json.loads(line))

own(json.loads(sys.argv[1]))
notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)
notifier.activated.connect(on_stdin)
app.exec()
"""


class SelectionOwner:
    """Another X client that owns PRIMARY with `text` (see OWNER); `own(text)` changes it."""

    def __init__(self, env: dict[str, str], text: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(text)], env=dict(os.environ, **env),
                                     text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._await_owned()

    def _await_owned(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it owns PRIMARY, or it died (EOF)
        if line.strip() != "owned":
            self.close()
            assert self.proc.stderr is not None
            raise AssertionError(f"the selection owner failed: {self.proc.stderr.read()[-2000:]}")

    def own(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        self._await_owned()

    def close(self) -> None:
        """Gone as a killed editor is: the X server then has no owner of PRIMARY."""
        self.proc.kill()
        self.proc.wait(10)

    def __enter__(self) -> SelectionOwner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb's display (":N"), stopped after the module."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb, in the Makefile's APT_RUNTIME): the PRIMARY "
                    "selection needs a real X server")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", "-screen", "0", "1024x768x24"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        number = b""
        deadline = time.monotonic() + XVFB_START_S
        # Xvfb writes the display number once it accepts clients; EOF means it exited.
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([read_fd], [], [], 0.5)[0]:
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                number += chunk
        if not number.strip().isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"Xvfb did not start: {err.decode(errors='replace')[-2000:]}")
        yield f":{number.strip().decode()}"
    finally:
        os.close(read_fd)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.fixture(scope="module")
def x_env(display: str) -> dict[str, str]:
    """What puts a process's Qt on the private X server (added to the environment it would have anyway)."""
    return {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}


@pytest.fixture(scope="module")
def window(x_env: dict[str, str]) -> Iterator[WindowProcess]:
    """One real window on that X server for the whole module."""
    with tempfile.TemporaryDirectory(prefix="vg-xsel-") as tmp:  # short: a unix socket path is bounded
        win = WindowProcess(Path(tmp), Path(tmp) / "rt", env=x_env)
        try:
            win.wait_for(READY, 120)
            yield win
        finally:
            win.stop()


def speak_selection(window: WindowProcess, text: str) -> None:
    """`voicegui speak --selection` hands the selection to the window, which speaks exactly `text`."""
    seen = len(window.lines)
    res = window.command("speak", "--selection")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stderr.strip() == "voicegui: speaking the selection in the voicegui window", res.stderr
    window.wait_for(FIRST_SOUND, 60, after=seen)
    try:
        until(lambda: history_texts(window.root)[-1:] == [text], 30, f"the window's History entry {text!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its History holds {history_texts(window.root)!r}; it said:\n"
                             + "\n".join(window.lines[seen:])) from None


def test_speak_selection_speaks_the_selected_text_through_the_window(window, x_env):
    text = "A naïve café owner selected this sentence."
    with SelectionOwner(x_env, text), MonitorRecording() as rec:
        speak_selection(window, text)
    assert sound_segments(rec.samples), "nothing was heard on the null sink"


def test_a_changed_selection_is_the_one_spoken(window, x_env):
    first, second, third = "Déjà vu.", "Same editor.", "Another program."  # short: three Speaks
    with SelectionOwner(x_env, first) as editor:
        speak_selection(window, first)
        editor.own(second)  # the same X client, a new text
        speak_selection(window, second)
    with SelectionOwner(x_env, third):  # a new owner
        speak_selection(window, third)


def test_no_selection_owner_is_a_clear_message_and_nothing_is_spoken(window, x_env):
    SelectionOwner(x_env, "Selected, then the editor was closed.").close()
    spoken = history_texts(window.root)
    seen = len(window.lines)
    with MonitorRecording() as rec:
        res = window.command("speak", "--selection")
    assert res.returncode == EXIT_FAILED
    assert res.stderr.strip() == "voicegui: nothing to speak: the selection holds no text", res.stderr
    assert not any("handed-over Speak" in line for line in window.lines[seen:]), window.lines[seen:]
    assert history_texts(window.root) == spoken
    assert not sound_segments(rec.samples), "something was heard although nothing was selected"


def test_an_owner_that_does_not_answer_is_named_and_the_window_keeps_working(window, x_env):
    # A hung editor holds the selection: Qt alone waited 15 s for it on the GUI thread, and the command timed
    # out saying the window did not answer and to close it. The owner is to blame, and the window answers.
    spoken = history_texts(window.root)
    with SelectionOwner(x_env, "Selected in an editor that then hung.") as hung:
        hung.proc.send_signal(signal.SIGSTOP)
        try:
            res = window.command("speak", "--selection")
        finally:
            hung.proc.send_signal(signal.SIGCONT)  # it answers the request it missed, late
        assert res.returncode == EXIT_FAILED
        assert res.stderr.splitlines() == ["voicegui: the program that holds the selection did not hand it over "
                                           "within 2 s (it may be busy or hung); select the text again and retry"
                                           ], res.stderr
        assert history_texts(window.root) == spoken
    text = "The next editor, naïvely."
    with SelectionOwner(x_env, text):  # the late answer is not taken for this one's
        speak_selection(window, text)


def test_without_a_window_speak_selection_says_it_needs_the_window(window, x_env):
    # No standalone selection reader in the CLI yet: without a window it must say so and what to do.
    with tempfile.TemporaryDirectory(prefix="vg-nowin-") as runtime, \
            SelectionOwner(x_env, "Nobody is listening, naïve as it is.") as editor:
        res = subprocess.run([sys.executable, "-m", "voicegui", "speak", "--selection"],
                             env=dict(window.env, VOICEGUI_RUNTIME_DIR=runtime),  # no window's socket in it
                             capture_output=True, text=True, timeout=120)
        assert editor.proc.poll() is None  # the selection is still there for a window to speak
    assert res.returncode == EXIT_USAGE
    assert res.stderr.splitlines() == ["voicegui: --selection needs the voicegui window, which reads it: start "
                                       "`voicegui` first"], res.stderr
