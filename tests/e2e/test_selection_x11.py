"""Issue 19 "Speak from anywhere" on a real X server: `voicegui speak --selection` speaks X11's PRIMARY selection
(and `--clipboard` the clipboard), through the window when one runs and by itself when none does.

Offscreen Qt has no selection at all, so this runs a private Xvfb (a free display number, found with
-displayfd), makes another X client own PRIMARY (a small Qt helper process on the xcb platform, as a text
editor would after the user selected a sentence), and drives a real window process (`python -m voicegui` on
xcb, the built-in offline voices, the PulseAudio null sink) with real `voicegui speak --selection` processes.
What the window spoke is read back from its History file and its log; that it was heard, from the null sink's
monitor. The sentences hold non-ASCII words, so a wrong encoding of the selection shows. An owner that does
not answer (stopped with SIGSTOP, as a hung editor) is named as the cause, and the window goes on working.

With no window (a runtime directory of their own, where no window's socket is), the commands read the selection
or clipboard themselves (cli/read_selection.py) and speak it as `voicegui speak TEXT` does, here to a built-in
server on 127.0.0.1 whose replay engine keeps the texts it was asked for; what played is read from --json and
--out, and heard on the null sink.

One Xvfb, one window and one server serve the whole file (module-scoped); the no-window cases never start the
window. Skipped only when Xvfb is not installed (the Makefile's APT_RUNTIME installs it, so CI runs this).
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

from tests.e2e.conftest import TOKEN, read_wav
from tests.e2e.handoff_bench import FIRST_SOUND, READY, WindowProcess
from tests.e2e.monitor import MonitorRecording, sound_segments
from tests.e2e.test_second_instance import history_texts, until
from voicegui.cli.args import EXIT_FAILED, EXIT_OK
from voicegui.server.engines.replay import ReplayEngine
from voicegui.server.thread import ServerThread
from voicegui.ui.x11_selection import MAX_SPEAK_CHARS

pytestmark = pytest.mark.audio

XVFB_START_S = 30

# The selection's owner: sets PRIMARY (or, with a second argument "clipboard", CLIPBOARD) to its first
# argument (JSON, so any text survives argv), says "owned" once the X server has made it the owner, then sets
# each JSON line read on stdin the same way; it answers every request for the selection until it is killed.
OWNER = r"""
import json, sys
from PySide6.QtCore import QSocketNotifier
from PySide6.QtGui import QClipboard, QGuiApplication

app = QGuiApplication(sys.argv[:1])
clipboard = QGuiApplication.clipboard()
on_clipboard = sys.argv[2:] == ["clipboard"]
mode = QClipboard.Mode.Clipboard if on_clipboard else QClipboard.Mode.Selection

def own(text):
    clipboard.setText(text, mode)
    if not (clipboard.ownsClipboard() if on_clipboard else clipboard.ownsSelection()):
        sys.exit("the X server did not make this client the owner of " + ("CLIPBOARD" if on_clipboard else "PRIMARY"))
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
    """Another X client that owns PRIMARY (or `selection="clipboard"`: CLIPBOARD) with `text` (see OWNER);
    `own(text)` changes it."""

    def __init__(self, env: dict[str, str], text: str, selection: str = "primary") -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", OWNER, json.dumps(text), selection],
                                     env=dict(os.environ, **env),
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


class ListeningEngine(ReplayEngine):
    """The replay engine, keeping each text it is asked to speak (appended on the server's thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.texts: list[str] = []

    async def synthesize(self, text: str, voice: str, speed: float):  # type: ignore[override]
        self.texts.append(text)
        async for block in super().synthesize(text, voice, speed):
            yield block


@pytest.fixture(scope="module")
def listening(clip) -> Iterator[tuple[ServerThread, ListeningEngine]]:
    engine = ListeningEngine(clip[0])
    with ServerThread(engine, token=TOKEN) as srv:
        yield srv, engine


@pytest.fixture
def alone(x_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The environment of a command that finds no window (a runtime directory no window listens in), with the
    test server's key."""
    with tempfile.TemporaryDirectory(prefix="vg-nowin-") as runtime:
        yield dict(os.environ, **x_env, VOICEGUI_RUNTIME_DIR=runtime, OPENAI_API_KEY=TOKEN)


def speak_here(env: dict[str, str], server: ServerThread, flag: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """`voicegui speak FLAG` with no window to take it: it reads and plays in its own process."""
    return subprocess.run([sys.executable, "-m", "voicegui", "speak", flag, "--base-url", server.base_url,
                           "--model", "tts-1", "--voice", "alloy", *extra],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("flag, selection", [("--selection", "primary"), ("--clipboard", "clipboard")])
def test_without_a_window_the_command_reads_and_speaks_it_itself(alone, x_env, listening, tmp_path, flag,
                                                                   selection):
    server, engine = listening
    text = f"Nobody's window is open, naïve café {selection}."
    other = "primary" if selection == "clipboard" else "clipboard"
    out = tmp_path / "played.wav"
    with SelectionOwner(x_env, text, selection) as editor, \
            SelectionOwner(x_env, "The other one, not to be spoken.", other), MonitorRecording() as rec:
        res = speak_here(alone, server, flag, "--json", "--out", str(out))
        assert editor.proc.poll() is None  # read, not taken: the editor still holds it
    assert res.returncode == EXIT_OK, res.stderr[-2000:]
    assert res.stderr == ""
    assert engine.texts[-1:] == [text]
    metrics = json.loads(res.stdout)
    assert metrics["completed"] and metrics["error"] is None, metrics
    assert abs(read_wav(out)).max() > 1000, "the --out file holds no sound"
    assert sound_segments(rec.samples), "nothing was heard on the null sink"


def test_without_a_window_a_hung_owner_is_named_and_nothing_is_requested(alone, x_env, listening):
    server, engine = listening
    asked = len(engine.texts)
    with SelectionOwner(x_env, "Selected in an editor that then hung.") as hung:
        hung.proc.send_signal(signal.SIGSTOP)
        try:
            res = speak_here(alone, server, "--selection")
        finally:
            hung.proc.send_signal(signal.SIGCONT)
    assert res.returncode == EXIT_FAILED
    assert res.stderr.splitlines() == ["voicegui: the program that holds the selection did not hand it over "
                                       "within 2 s (it may be busy or hung); select the text again and retry"
                                       ], res.stderr
    assert len(engine.texts) == asked


@pytest.mark.parametrize("held", [None, " \n\t "], ids=["no-owner", "only-spaces"])
def test_without_a_window_an_empty_selection_is_a_clear_message_and_nothing_is_played(alone, x_env, listening,
                                                                                        held):
    server, engine = listening
    asked = len(engine.texts)
    if held is None:
        SelectionOwner(x_env, "Selected, then the editor was closed.").close()
        res = speak_here(alone, server, "--selection")
    else:
        with SelectionOwner(x_env, held):
            res = speak_here(alone, server, "--selection")
    assert res.returncode == EXIT_FAILED
    assert res.stderr.splitlines() == ["voicegui: nothing to speak: the selection holds no text"], res.stderr
    assert len(engine.texts) == asked


@pytest.mark.parametrize("through", ["window", "alone"])
def test_a_clipboard_over_the_windows_limit_is_refused_alike_with_and_without_a_window(request, x_env, listening,
                                                                                        through):
    server, engine = listening
    asked = len(engine.texts)
    with SelectionOwner(x_env, "Copied.", "clipboard") as editor:
        editor.own("x" * (MAX_SPEAK_CHARS + 1))  # through its stdin: too long for an argument
        if through == "window":
            res = request.getfixturevalue("window").command("speak", "--clipboard")
        else:
            res = speak_here(request.getfixturevalue("alone"), server, "--clipboard")
    assert res.returncode == EXIT_FAILED
    assert res.stderr.splitlines() == [f"voicegui: the clipboard is {MAX_SPEAK_CHARS + 1} characters long, over "
                                       f"the window's limit of {MAX_SPEAK_CHARS}; speak a shorter part"], res.stderr
    assert len(engine.texts) == asked
