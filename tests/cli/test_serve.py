"""`voicegui serve` options: loopback only, --replay required, and a real run in a subprocess that logs
"ready on ...", serves a request and stops cleanly on Ctrl+C (SIGINT)."""

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

import pytest

from tests.server import clip
from voicegui.cli.serve import add_serve_arguments, run_serve, shaping_from_args
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
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
