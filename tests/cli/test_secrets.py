"""The CLI and secrets, for real: `voicegui speak` / `voicegui lineup` as child processes against a hostile
server on 127.0.0.1 that echoes the key in its error message with terminal escape sequences
(tests/ui/hostile_server.py). The key reaches the server, and nothing the CLI prints or writes (stderr,
stdout, --json, the line-up report and CSV, the history, the log) holds it or a raw escape sequence. The key
can come from a private file or $OPENAI_API_KEY; --api-key warns that `ps` shows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ui.hostile_server import HostileServer
from voicegui.cli.args import terminal_safe

pytestmark = pytest.mark.audio

KEY = "sk-proj-CliEchoedKey0987654321zyx"
PLAIN_KEY = "kokoro-plain-7731"  # a key without an sk- shape: only the registered secret finds it


@pytest.fixture
def hostile():
    with HostileServer("401") as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ, VOICEGUI_CONFIG_DIR=str(tmp_path / "config"), VOICEGUI_CACHE_DIR=str(tmp_path / "cache"),
             VOICEGUI_LOG_DIR=str(tmp_path / "logs"))
    e.pop("OPENAI_API_KEY", None)
    return e


def voicegui(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voicegui", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def key_file(tmp_path: Path, key: str, mode: int = 0o600) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(f"  {key}\n")
    path.chmod(mode)
    return path


def assert_clean(res: subprocess.CompletedProcess, tmp_path: Path, *keys: str) -> None:
    """No key and no raw escape in what was printed, nor in any file written under tmp_path."""
    written = "".join(p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
                      if p.is_file() and p.name != "key.txt")
    for key in keys:
        assert key not in res.stdout + res.stderr + written
    assert "\x1b" not in res.stdout + res.stderr and "\x07" not in res.stderr
    assert "Traceback" not in res.stderr


def test_speak_with_a_key_file_never_prints_the_key_the_server_echoes(hostile, env, tmp_path):
    path = key_file(tmp_path, PLAIN_KEY)
    res = voicegui(env, "speak", "Hello there.", "--base-url", hostile.base_url, "--api-key-file", str(path),
                   "--json")
    assert res.returncode == 1
    assert PLAIN_KEY in hostile.seen_keys  # read from the file, stripped
    assert "Incorrect API key provided" in res.stderr and "[REDACTED]" in res.stderr
    assert "\\x1b]0;pwned\\x07" in res.stderr  # the escape sequence shown, not obeyed
    assert "ps" not in res.stderr  # no --api-key warning for a key file
    assert_clean(res, tmp_path, PLAIN_KEY)


def test_speak_json_output_is_redacted(hostile, env, tmp_path):
    env["OPENAI_API_KEY"] = KEY
    res = voicegui(env, "speak", "Hello there.", "--base-url", hostile.base_url, "--json")
    assert KEY in hostile.seen_keys  # $OPENAI_API_KEY was used
    assert res.returncode == 1
    if res.stdout.strip():  # a failed Speak with metrics prints them
        payload = json.loads(res.stdout)
        assert KEY not in json.dumps(payload)
    assert_clean(res, tmp_path, KEY)


def test_api_key_on_the_command_line_warns(hostile, env, tmp_path):
    res = voicegui(env, "speak", "Hello there.", "--base-url", hostile.base_url, "--api-key", PLAIN_KEY)
    assert PLAIN_KEY in hostile.seen_keys
    warnings = [line for line in res.stderr.splitlines() if "--api-key" in line]
    assert len(warnings) == 1 and "ps" in warnings[0] and "OPENAI_API_KEY" in warnings[0]
    assert "--api-key-file" in warnings[0]
    assert_clean(res, tmp_path, PLAIN_KEY)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_can_read_is_refused(hostile, env, tmp_path, mode):
    path = key_file(tmp_path, PLAIN_KEY, mode)
    res = voicegui(env, "speak", "Hello there.", "--base-url", hostile.base_url, "--api-key-file", str(path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "other users" in lines[0] and f"chmod 600 {path}" in lines[0], res.stderr
    assert hostile.seen_keys == []  # nothing was sent
    assert_clean(res, tmp_path, PLAIN_KEY)


@pytest.mark.parametrize("content,words", [(None, "No such file"), ("  \n", "empty"), ("a\nb\n", "one line")])
def test_an_unusable_key_file_is_one_clear_line(hostile, env, tmp_path, content, words):
    path = tmp_path / "key.txt"
    if content is not None:
        path.write_text(content)
        path.chmod(0o600)
    res = voicegui(env, "speak", "Hello there.", "--base-url", hostile.base_url, "--api-key-file", str(path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and lines[0].startswith("voicegui: "), res.stderr
    assert hostile.seen_keys == []


def test_lineup_takes_the_key_from_the_environment_and_reports_without_it(hostile, env, tmp_path):
    env["OPENAI_API_KEY"] = KEY
    report, table = tmp_path / "out" / "report.html", tmp_path / "out" / "report.csv"
    res = voicegui(env, "lineup", "--base-url", hostile.base_url, "--voices", "alloy,nova", "--text", "Hi.",
                   "--report", str(report), "--csv", str(table), "--history", timeout=120)
    assert res.returncode == 1  # both voices failed
    assert KEY in hostile.seen_keys
    assert "Incorrect API key provided" in res.stderr and "\\x1b" in res.stderr
    assert "Incorrect API key provided" in report.read_text() and "Incorrect API key" in table.read_text()
    assert_clean(res, tmp_path, KEY)


def test_lineup_reads_a_key_file(hostile, env, tmp_path):
    path = key_file(tmp_path, PLAIN_KEY)
    table = tmp_path / "out.csv"
    res = voicegui(env, "lineup", "--base-url", hostile.base_url, "--voices", "alloy", "--text", "Hi.",
                   "--api-key-file", str(path), "--csv", str(table), timeout=120)
    assert res.returncode == 1
    assert PLAIN_KEY in hostile.seen_keys
    assert "[REDACTED]" in table.read_text()
    assert_clean(res, tmp_path, PLAIN_KEY)


def test_terminal_safe_escapes_controls_and_keeps_newlines_and_tabs():
    text = f"a\x1b[2Jb\rc\x9bd\x00e\x7f\tf\ng {KEY}"
    out = terminal_safe(text)
    assert out == "a\\x1b[2Jb\\x0dc\\x9bd\\x00e\\x7f\tf\ng [REDACTED]"


def test_log_lines_on_the_terminal_are_escaped_and_redacted():
    """A server's words reach log messages too (a warm-up failure, a refused field): the command line's log
    handler escapes control characters and redacts keys like everything else it prints."""
    import logging

    from voicegui.cli.args import TerminalSafeFormatter

    record = logging.LogRecord("voicegui.test", logging.WARNING, __file__, 1,
                               "server said: %s", ("\x1b]0;pwned\x07\x1b[2J key sk-abcdefghijklmnopqrstuvwx",), None)
    line = TerminalSafeFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\x1b" not in line and "\x07" not in line
    assert "\\x1b]0;pwned" in line and "sk-abcdefghijklmnopqrstuvwx" not in line
