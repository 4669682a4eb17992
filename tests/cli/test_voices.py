"""`voicegui voices` as a user runs it: a real `python -m voicegui voices` subprocess against the built-in
voices (started and stopped by the command) and against a real aiohttp server on 127.0.0.1 (table, --json,
--models, the key from $OPENAI_API_KEY or --api-key-file, a server without a voice list), and the one
`voicegui:` line for an unreachable server, a refused key or an unusable key file."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.json_server import routes_app
from voicegui.server.embedded import BuiltinServer

REPO = Path(__file__).resolve().parents[2]
TOKEN = "sk-test-voices-123"
# A name with terminal escapes (retitle the window, bell) and a CR: printed escaped, never raw.
EVIL_NAME = "Evil\x1b]0;pwned\x07\rok"


async def run_cli(*argv: str, key: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python -m voicegui voices ...`, with $OPENAI_API_KEY = key."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    if key is not None:
        env["OPENAI_API_KEY"] = key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voicegui", "voices", *argv, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)  # a hang fails, generously
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_one_error_line(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voicegui: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], err


@pytest.fixture
def server(local_app):
    """make(routes) -> base URL: GET <path> answers the JSON given, 401 without the Bearer TOKEN."""

    async def make(routes: dict[str, object]) -> str:
        return await local_app(routes_app(routes, TOKEN))

    return make


KOKORO_LIKE = {
    "/v1/models": {"object": "list", "data": [{"id": "kokoro", "shutdown_date": None},
                                              {"id": "tts-1", "shutdown_date": "2027-01-06"}]},
    # the list only at /v1/voices, in the {"data": [...]} shape, with a duplicate and a hostile name
    "/v1/voices": {"data": [{"voice_id": "af_bella", "name": "Bella"}, "am_adam", {"id": "af_bella"},
                            {"id": "zz_evil", "name": EVIL_NAME}]},
}


async def test_builtin_voices_table_and_json():
    with BuiltinServer(lazy=True) as srv:
        expected = [v.id for v in srv.voices()]
    assert expected
    code, out, err = await run_cli(key="sk-not-for-the-builtin-server")
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].split() == ["voice", "name"]
    assert [line.split()[0] for line in lines[1:]] == expected

    code, out, err = await run_cli("--json", "--models")
    assert code == 0 and err == "", err
    data = json.loads(out)
    assert [v["id"] for v in data["voices"]] == expected and data["reason"] is None
    assert "builtin" in [m["id"] for m in data["models"]]


async def test_remote_server_table(server):
    url = await server(KOKORO_LIKE)
    code, out, err = await run_cli("--base-url", url, "--models", key=TOKEN)
    assert code == 0 and err == "", err
    voices_part, models_part = out.split("\n\n")
    rows = voices_part.splitlines()
    assert [r.split()[0] for r in rows] == ["voice", "af_bella", "am_adam", "zz_evil"]
    assert "Bella" in rows[1]
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "\\x1b]0;pwned\\x07\\x0dok" in rows[3]
    assert [r.split() for r in models_part.splitlines()] == [["model", "shutdown"], ["kokoro"],
                                                            ["tts-1", "2027-01-06"]]


async def test_remote_server_json_with_a_key_file(server, tmp_path):
    url = await server(KOKORO_LIKE)
    key_file = tmp_path / "key"
    key_file.write_text(TOKEN + "\n")
    key_file.chmod(0o600)
    code, out, err = await run_cli("--base-url", url, "--api-key-file", str(key_file), "--json")
    assert code == 0 and err == "", err
    data = json.loads(out)
    assert data["voices"] == [{"id": "af_bella", "name": "Bella"}, {"id": "am_adam", "name": "am_adam"},
                              {"id": "zz_evil", "name": EVIL_NAME}]
    assert "models" not in data and data["reason"] is None


async def test_server_without_a_voice_list_lists_none(server):
    url = await server({"/v1/models": {"data": [{"id": "kokoro"}]}})
    code, out, err = await run_cli("--base-url", url, "--json", key=TOKEN)
    assert code == 1
    data = json.loads(out)
    assert data["voices"] == [] and url in data["reason"]  # not OpenAI's names: they fail on such a server
    assert_one_error_line(err, "offers no voice list", "type the voice id")


async def test_unreachable_server_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    code, out, err = await run_cli("--base-url", url, "--timeout-s", "5")
    assert code == 1 and out == ""
    assert_one_error_line(err, "Could not connect to " + url)


async def test_refused_key_and_bad_input_are_one_line(server, tmp_path):
    url = await server(KOKORO_LIKE)
    code, out, err = await run_cli("--base-url", url, key="sk-wrong")
    assert code == 1 and out == ""
    assert_one_error_line(err, "rejected the API key (401)", "Incorrect API key")
    assert "sk-wrong" not in err

    code, out, err = await run_cli("--base-url", "http://[/v1")
    assert code == 1 and out == ""
    assert_one_error_line(err, "not a valid URL")

    key_file = tmp_path / "key"
    key_file.write_text(TOKEN)
    key_file.chmod(0o644)
    code, out, err = await run_cli("--base-url", url, "--api-key-file", str(key_file))
    assert code == 2 and out == ""
    assert_one_error_line(err, "can be read by other users", "chmod 600")
