"""`voicegui serve` options: loopback only, --replay required, and a real run in a subprocess that logs
"ready on ...", serves a request and stops cleanly on Ctrl+C (SIGINT). The API key: required by default (a
random one, printed on the ready line), from $VOICEGUI_SERVE_TOKEN, --token (warns: `ps` shows it) or
--no-token (warns); and the served app refuses web pages (foreign Origin/Host)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal as os_signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.server import clip
from voicegui.cli.serve import TOKEN_ENV, add_serve_arguments, run_serve, shaping_from_args
from voicegui.stream.fetch import FetchMarks, SpeechRequest, fetch_speech

REPO = Path(__file__).resolve().parents[2]
_RUNNER = ("import argparse, logging, sys\n"
           "from voicegui.cli.serve import add_serve_arguments, run_serve\n"
           "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
           "p = argparse.ArgumentParser(); add_serve_arguments(p)\n"
           "sys.exit(run_serve(p.parse_args(sys.argv[1:])))\n")


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_serve_arguments(p)
    return p.parse_args(list(argv))


def test_refuses_non_loopback_host(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    wav = clip.write_wav(tmp_path / "c.wav", 0.2)
    assert run_serve(_parse("--host", "0.0.0.0", "--replay", str(wav))) == 2
    assert "127.0.0.1" in caplog.text and "refusing" in caplog.text



def test_missing_replay_file(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    assert run_serve(_parse("--replay", str(tmp_path / "nope.wav"))) == 2
    assert "no such file" in caplog.text


def test_shaping_options():
    sh = shaping_from_args(_parse("--first-byte-delay-ms", "250", "--throughput-x", "1.5", "--jitter-ms", "20",
                                  "--cut-after-bytes", "100", "--error-status", "503"))
    assert (sh.first_byte_delay_s, sh.throughput_x, sh.jitter_s, sh.cut_after_bytes, sh.error_status) == \
        (0.25, 1.5, 0.02, 100, 503)
    with pytest.raises(SystemExit):
        _parse("--error-status", "200")


@pytest.mark.parametrize("entry", [["-c", _RUNNER], ["-m", "voicegui", "serve"]], ids=["run_serve", "cli"])
async def test_serves_until_interrupted(tmp_path, entry):
    wav = clip.write_wav(tmp_path / "c.wav", 1.0)
    proc = subprocess.Popen([sys.executable, *entry, "--port", "0", "--replay", str(wav), "--token", "tok"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        url = None
        deadline = time.monotonic() + 20
        lines = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"ready on (http://127\.0\.0\.1:\d+/v1)", line)
            if m:
                url = m.group(1)
        assert url, "no ready line:\n" + "".join(lines)
        req = SpeechRequest(base_url=url, api_key="tok", model="tts-1", voice="alloy", text="hi",
                            response_format="wav", timeout_s=10)
        got = bytearray()

        async def keep(chunk: bytes) -> None:
            got.extend(chunk)

        total = await fetch_speech(req, FetchMarks(None, None, None), keep)
        assert total == 44 + 48000 and got[:4] == b"RIFF"
        proc.send_signal(os_signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert "Traceback" not in out
        log_text = "".join(lines) + out
        assert "WARNING" in log_text and "(ps)" in log_text and TOKEN_ENV in log_text  # --token is visible
        assert "API key: the one given with --token" in log_text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- the API key ----------------------------------------------------------------------------------------------

class _Serve:
    """`python -m voicegui serve --port 0 --replay WAV ...` in a subprocess; its log (stderr) read up to the
    ready line. Stopped with SIGINT (killed if that fails)."""

    def __init__(self, wav: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environ = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
        environ.update(env or {}, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "voicegui", "serve", "--port", "0", "--replay",
                                      str(wav), *args], cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=environ)
        self.lines: list[str] = []
        self.ready = ""
        deadline = time.monotonic() + 30  # a generous bound on start-up, not a measurement
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if "ready on " in line:
                self.ready = line
                break
        m = re.search(r"ready on (http://127\.0\.0\.1:\d+/v1)", self.ready)
        assert m, "no ready line:\n" + "".join(self.lines)
        self.url = m.group(1)

    def stop(self) -> str:
        """SIGINT, then the whole log (stderr); checks a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(os_signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        log_text = "".join(self.lines) + err
        assert self.proc.returncode == 0, log_text
        assert "Traceback" not in log_text + out
        return log_text

    def __enter__(self) -> _Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def _status(url: str, key: str | None, headers: dict[str, str] | None = None) -> int:
    auth = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/audio/speech", headers={**auth, **(headers or {})},
                          json={"model": "tts-1", "voice": "alloy", "input": "Hi.", "response_format": "pcm"}) as r:
            await r.read()
            return r.status


async def test_serve_requires_the_printed_key_by_default(tmp_path):
    wav = clip.write_wav(tmp_path / "c.wav", 0.2)
    with _Serve(wav) as srv:
        m = re.search(r" -- API key: (\S+)$", srv.ready)
        assert m, srv.ready
        key = m.group(1)
        assert len(key) >= 20
        assert await _status(srv.url, None) == 401
        assert await _status(srv.url, "wrong") == 401
        assert await _status(srv.url, key) == 200
        # The key does not let a web page in: the browser's Origin header gives the page away.
        assert await _status(srv.url, key, {"Origin": "http://evil.example"}) == 403
        log_text = srv.stop()
    assert log_text.count(key) == 1  # printed once, on the ready line
    assert "WARNING" not in log_text


async def test_serve_takes_the_key_from_the_environment(tmp_path):
    wav = clip.write_wav(tmp_path / "c.wav", 0.2)
    with _Serve(wav, env={TOKEN_ENV: "key-from-the-environment"}) as srv:
        assert f"API key: the one in ${TOKEN_ENV}" in srv.ready
        assert await _status(srv.url, None) == 401
        assert await _status(srv.url, "key-from-the-environment") == 200
        log_text = srv.stop()
    assert "key-from-the-environment" not in log_text and "WARNING" not in log_text


async def test_serve_no_token_warns_and_accepts_any_key(tmp_path):
    wav = clip.write_wav(tmp_path / "c.wav", 0.2)
    with _Serve(wav, "--no-token") as srv:
        assert "no API key needed" in srv.ready
        assert await _status(srv.url, None) == 200
        assert await _status(srv.url, "anything") == 200
        log_text = srv.stop()
    warnings = [line for line in log_text.splitlines() if line.startswith("WARNING")]
    assert any("--no-token" in line and "without a key" in line for line in warnings), log_text


@pytest.mark.parametrize("argv, env", [(["--token", ""], {}), (["--token", "has space"], {}),
                                       ([], {TOKEN_ENV: ""}), ([], {TOKEN_ENV: "clé"})])
def test_serve_refuses_unusable_keys(tmp_path, caplog, monkeypatch, argv, env):
    caplog.set_level(logging.ERROR)
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    wav = clip.write_wav(tmp_path / "c.wav", 0.2)
    assert run_serve(_parse("--port", "0", "--replay", str(wav), *argv)) == 2
    assert "printable ASCII" in caplog.text


def test_token_and_no_token_exclude_each_other():
    with pytest.raises(SystemExit):
        _parse("--token", "x", "--no-token")
