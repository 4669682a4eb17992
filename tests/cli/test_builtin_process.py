"""`voicegui speak` with the built-in voices serves them from a child process forked at its first line
(cli/builtin_process.py): the child exists while the command runs and never outlives it, whether the command
ends normally, is interrupted with Ctrl+C or is killed. Real commands on the null sink; the child is found
by its name in /proc (it names itself "voicegui-voices")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from voicegui.cli.builtin_process import speak_args

REPO = Path(__file__).resolve().parents[2]
CHILD_NAME = "voicegui-voices"
LONG_TEXT = ("This sentence is here so that the command is still speaking when the test acts on it. " * 3).strip()
WAIT_S = 30.0


def _children_named(pid: int, name: str) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == name:
                    found.append(int(child))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_speak(*args: str) -> subprocess.Popen:
    env = dict(os.environ, OPENAI_API_KEY="sk-should-not-be-used")
    return subprocess.Popen([sys.executable, "-m", "voicegui", "speak", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _its_voices_process(proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        children = _children_named(proc.pid, CHILD_NAME)
        if children:
            return children[0]
        assert proc.poll() is None, f"the command ended without a voices process: {proc.communicate()}"
        time.sleep(0.005)
    raise AssertionError("no voices process appeared")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.audio
def test_the_voices_are_served_by_a_child_that_ends_with_the_command() -> None:
    proc = _start_speak("Hi.", "--voice", "espeak:en-us")
    child = _its_voices_process(proc)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert out == ""
    assert not _alive(child)  # stopped and reaped before the command returned


@pytest.mark.audio
def test_ctrl_c_ends_the_command_and_its_child() -> None:
    proc = _start_speak(LONG_TEXT, "--voice", "espeak:en-us")
    child = _its_voices_process(proc)
    time.sleep(0.5)  # into the speech, or at least the request
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl+C: the whole foreground group
    _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1, err
    assert "voicegui: stopped" in err
    assert "Traceback" not in err
    assert _gone_within(child, 10)


@pytest.mark.audio
def test_a_killed_command_does_not_leave_its_child_behind() -> None:
    proc = _start_speak(LONG_TEXT, "--voice", "espeak:en-us")
    child = _its_voices_process(proc)
    proc.kill()
    proc.communicate(timeout=WAIT_S)
    assert _gone_within(child, 10), "the voices process outlived its killed parent"


def test_a_child_that_dies_before_serving_is_said_not_waited_for() -> None:
    script = textwrap.dedent("""
        import os, signal
        from voicegui.cli.builtin_process import BuiltinProcess
        voices = BuiltinProcess.fork("espeak:en-us")
        os.kill(voices.pid, signal.SIGKILL)
        print(voices.ready().problem)
        voices.stop()
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the built-in voices' process ended before serving (signal SIGKILL)"


@pytest.mark.parametrize("argv, expected", [
    (["speak", "Hi."], (None, None, 0)),
    (["-vv", "speak", "Hi.", "--voice", "espeak:en-us"], (None, "espeak:en-us", 2)),
    (["--verbose", "-v", "speak", "--voice=piper:joe", "Hi."], (None, "piper:joe", 2)),
    (["speak", "--voi", "heart", "Hi."], (None, "heart", 0)),
    (["speak", "Hi.", "--base-url", "http://127.0.0.1:9/v1"], ("http://127.0.0.1:9/v1", None, 0)),
    (["speak", "--base=https://example.test/v1", "Hi."], ("https://example.test/v1", None, 0)),
    (["speak", "--", "--base-url", "--voice"], (None, None, 0)),  # words after "--" are the text
    (["speak", "-v", "Hi."], (None, None, 0)),  # after the command, -v is not the top level's
])
def test_speak_args_read_what_argparse_would(argv: list[str], expected: tuple[str | None, str | None, int]) -> None:
    assert speak_args(argv, argv.index("speak")) == expected
