"""The command line's side of the single-instance hand-off (cli/handoff.py, instance_protocol.py): the wire
format and its bounds, the private runtime directory, the peer check, and what `voicegui speak` / `stop`
do with no window, a stale socket, or a listening one.

The listening "window" here is a real AF_UNIX server in a thread speaking the protocol and recording what it
got (the real window's server is tested in tests/ui/test_instance.py and, as a second process, in
tests/e2e/test_second_instance.py). `voicegui` runs as a real subprocess where its imports matter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from tests.cli.test_startup import PLAYBACK, QT, imported, loaded
from voicegui import instance_protocol as proto
from voicegui.cli import args, entry, handoff, main as cli_main
from voicegui.instance_protocol import ProtocolError, Reply, Request, WindowState


@pytest.fixture(params=[entry.main, cli_main.main], ids=["console-script", "cli.main"])
def main(request: pytest.FixtureRequest) -> Callable[[list[str]], int]:
    """Both ways in: the console script and `python -m voicegui` (cli.entry, the hand-off before cli.main is
    imported), and cli.main.main, which callers that import it still get the hand-off from."""
    return request.param


def stale_socket(runtime: Path) -> Path:
    path = runtime / proto.SOCKET_NAME
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))  # bound and closed: what a killed window leaves
    s.close()
    return path


# --- the wire format ---------------------------------------------------------------------------------------
def test_requests_and_replies_round_trip():
    for request in (Request("speak", "Grüße, \u202e 日本"), Request("stop"), Request("speak-selection")):
        data = proto.encode_request(request)
        assert proto.body_length(data[:4]) == len(data) - 4
        assert proto.decode_request(data[4:]) == request
    data = proto.encode_reply(Reply(False, "no"))
    assert proto.decode_reply(data[4:]) == Reply(False, "no")


def test_bounds_and_garbage_are_protocol_errors():
    with pytest.raises(ProtocolError, match="over the limit"):
        proto.body_length((proto.MAX_MESSAGE_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(ProtocolError, match="over the limit"):
        proto.encode_request(Request("speak", "x" * proto.MAX_MESSAGE_BYTES))
    for body, match in ((b"\xff\xfe", "not UTF-8 JSON"), (b"[1]", "not a JSON object"),
                        (b'{"v": 2, "op": "stop"}', "version 2"), (b'{"v": 1, "op": "format"}', "unknown request"),
                        (b'{"v": 1, "op": "speak", "text": 5}', "not a string")):
        with pytest.raises(ProtocolError, match=match):
            proto.decode_request(body)


# --- privacy ------------------------------------------------------------------------------------------------
def test_runtime_dir_is_made_private(tmp_path: Path):
    made = proto.ensure_runtime_dir(tmp_path / "new")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    proto.ensure_runtime_dir(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o700


def test_runtime_dir_that_is_a_link_is_refused(tmp_path: Path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError, match="not a directory of this user"):
        proto.ensure_runtime_dir(tmp_path / "link")


def test_peer_check_reads_the_real_peer_uid_and_refuses_another():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        creds = proto.peer_credentials(a.fileno())
        assert proto.peer_problem(creds, os.getuid()) is None
        problem = proto.peer_problem(creds, os.getuid() + 1)
        assert problem is not None and f"user id {os.getuid()}" in problem
        a.sendall(b"still open")  # the check borrowed the descriptor, it did not close it
        assert b.recv(10) == b"still open"


def test_the_client_refuses_a_socket_of_another_uid_before_sending(window):
    # The same client code, told it belongs to another user: the real listener's SO_PEERCRED no longer
    # matches, so it is refused with a sentence and nothing reaches the listener.
    with pytest.raises(OSError) as refused:
        proto.connect(proto.socket_file(), own_uid=os.getuid() + 1)
    assert f"user id {os.getuid()}, not by a voicegui window of user id {os.getuid() + 1}" in str(refused.value)
    assert window.requests == []


def _listen_as_another_user(path: Path, uid: int) -> tuple[int, int]:
    """A forked child that becomes `uid` and listens at `path` (no exec: the interpreter may sit under a
    directory only root can enter); it writes "ready", then how many bytes its one connection sent, to the
    returned pipe. (pid, read end)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls, then _exit
        code = 0
        try:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(str(path))
            s.listen()
            os.write(write_end, b"ready\n")
            conn, _ = s.accept()
            conn.settimeout(3)
            try:
                got = len(conn.recv(65536))
            except TimeoutError:
                got = 0
            os.write(write_end, f"{got}\n".encode())
        except BaseException:  # a forked child must never return into pytest
            code = 1
        os._exit(code)
    os.close(write_end)
    return pid, read_end


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root (as CI runs)")
def test_speak_sends_nothing_to_another_users_socket(monkeypatch, capsys):
    """Whoever made the runtime directory first (the /tmp fallback), a listener of another user gets no
    text: the command says so in one line and fails."""
    shared = Path(tempfile.mkdtemp(prefix="vg-shared-"))  # in /tmp itself: pytest's tmp_path is root's only
    shared.chmod(0o777)
    pid, pipe = _listen_as_another_user(shared / proto.SOCKET_NAME, 65534)
    with os.fdopen(pipe) as said:
        try:
            assert said.readline().strip() == "ready"
            monkeypatch.setenv(proto.RUNTIME_ENV, str(shared))
            assert entry.main(["speak", "A private sentence."]) == 1
            err = capsys.readouterr().err
            assert "held by a process of user id 65534" in err and "nothing was sent" in err
            assert err.count("\n") == 1
            assert said.readline().strip() == "0", "the other user's process received bytes"
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            shutil.rmtree(shared, ignore_errors=True)


# --- voicegui speak / stop ----------------------------------------------------------------------------------
def test_stop_with_no_window_says_nothing_is_playing(main, runtime, capsys):
    assert main(["stop"]) == 0
    assert capsys.readouterr().err.strip() == "voicegui: nothing is playing (no voicegui window runs)"
    stale_socket(runtime)
    assert proto.window_state() is WindowState.STALE
    assert main(["stop"]) == 0


def test_selection_with_no_window_is_read_here(main, runtime, capsys, monkeypatch):
    stale_socket(runtime)  # a crashed window's socket counts as no window: the command reads the selection itself
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["speak", "--selection"]) == 1
    err = capsys.readouterr().err
    assert "no X display or Wayland session to read the selection from" in err and err.count("\n") == 1


def test_speak_and_stop_are_handed_to_the_window(main, window, capsys):
    assert main(["speak", "Hello from the command line."]) == 0
    assert main(["-v", "speak", "--clipboard"]) == 0
    assert main(["speak", "--selection"]) == 0
    assert main(["stop"]) == 0
    assert main([]) == 0  # a second window: the first is raised
    assert window.requests == [Request("speak", "Hello from the command line."), Request("speak-clipboard"),
                               Request("speak-selection"), Request("stop"), Request("show")]
    assert "voicegui: speaking the text in the voicegui window" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error_not_a_raised_window(main, window, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["speek", "Hi."])
    assert usage.value.code == 2 and "invalid choice: 'speek'" in capsys.readouterr().err
    assert window.requests == []


def test_window_refusal_is_one_line_and_a_failure(main, window, capsys):
    window.reply = Reply(False, "nothing to speak: the selection holds no text")
    assert main(["speak", "--selection"]) == 1
    assert capsys.readouterr().err == "voicegui: nothing to speak: the selection holds no text\n"


@pytest.mark.parametrize("argv, named", [
    (["speak", "Hi.", "--voice", "nova"], "--voice"),
    (["speak", "--out", "x.wav", "Hi."], "--out"),
    (["speak", "--json", "--clipboard"], "--json"),
])
def test_options_the_window_does_not_take_are_refused_not_dropped(main, window, capsys, argv, named):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{named} is not passed to it" in err and "close the window" in err
    assert window.requests == []


def test_two_things_to_speak_are_refused(main, window, capsys):
    assert main(["speak", "Hi.", "--clipboard"]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert window.requests == []


def test_handoff_loads_no_qt_and_no_playback_stack(window):
    modules, proc = imported("-m", "voicegui", "speak", "Handed over.")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert loaded(modules, QT | PLAYBACK) == set()
    assert window.requests == [Request("speak", "Handed over.")]


def test_a_window_that_does_not_answer_is_reported(runtime):
    path = runtime / proto.SOCKET_NAME
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(str(path))
    mute.listen()  # accepts connections (the kernel's backlog) but never replies
    try:
        proc = subprocess.run([sys.executable, "-m", "voicegui", "stop"], capture_output=True, text=True,
                              timeout=60, env=dict(os.environ))
    finally:
        mute.close()
    assert proc.returncode == 1
    assert "did not answer" in proc.stderr and "Traceback" not in proc.stderr


# --- the hand-off reads speak's arguments by hand (no argparse in a hand-off) -------------------------------
def test_exit_codes_are_cli_args_own():
    assert (handoff.EXIT_OK, handoff.EXIT_FAILED, handoff.EXIT_USAGE) == (args.EXIT_OK, args.EXIT_FAILED,
                                                                          args.EXIT_USAGE)


def argparse_reading(words: list[str]) -> tuple[str | None, set[str], list[str]]:
    """How argparse reads speak's three arguments (what the hand-off used before it read them by hand)."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("text", nargs="?")
    parser.add_argument("--clipboard", action="store_true")
    parser.add_argument("--selection", action="store_true")
    parsed, rest = parser.parse_known_args(words)
    flags = {f for f, on in (("--clipboard", parsed.clipboard), ("--selection", parsed.selection)) if on}
    return parsed.text, flags, rest


WORDS = ["Hi.", "two words", "", "-", "-5", "-.5", "-1.5", "-1.", "-x y", "--clipboard", "--clip", "--c",
         "--selection", "--sel", "--voice", "nova", "-x", "--json", "--out", "x.wav", "-٣"]


@given(st.lists(st.sampled_from(WORDS), max_size=5))
def test_speak_words_are_read_as_argparse_reads_them(words):
    assert handoff.read_speak_words(words) == argparse_reading(words)


@pytest.mark.parametrize("words", [["--", "-not an option"], ["--clipboard", "--", "--selection"], ["--", "-x"],
                                   ["a", "--", "b"]])
def test_speak_words_after_a_double_dash_are_texts(words):
    assert handoff.read_speak_words(words) == argparse_reading(words)


def test_a_flag_given_a_value_is_refused_in_a_sentence(main, window, capsys):
    assert main(["speak", "--clipboard=yes"]) == 2
    assert capsys.readouterr().err == ("voicegui: --clipboard takes no value (it was given '--clipboard=yes'); "
                                       "leave out the '=...'\n")
    assert window.requests == []


def test_a_reply_with_control_characters_is_escaped(main, window, capsys):
    """Our window's replies are plain sentences; something else on the socket cannot drive the terminal."""
    window.reply = Reply(True, "speaking \x1b]0;owned\x07 in the window")
    assert main(["speak", "Hi."]) == 0
    assert capsys.readouterr().err == "voicegui: speaking \\x1b]0;owned\\x07 in the window\n"
