"""What the command line imports before it needs it (issue 17, "fast from the first keystroke").

Each check runs a real `python -X importtime ...` subprocess and reads the modules it imported from the
importtime lines on stderr, so it sees exactly what a user's `voicegui` loads: the CLI module and `speak`'s
argument handling load no Qt, no audio or network stack, no engine; a whole `voicegui speak` against a pcm
server on 127.0.0.1 (into the test null sink) or with the espeak-ng voice loads no Qt and no neural engine.
The built-in voice's model is loaded as soon as the server is up, before any request (cli.preload).
No timing is asserted: tests/cli/startup_bench.py measures the times.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli.startup_bench import PcmServer
from voicegui.cli.preload import load_voice_in_background
from voicegui.server.embedded import BuiltinServer
from voicegui.server.engines.builtin import LazyEngine
from voicegui.server.engines.espeak import missing as espeak_missing
from voicegui.server.engines.hibari import missing as hibari_missing

REPO = Path(__file__).resolve().parents[2]
QT = {"PySide6", "pyqtgraph", "qasync"}
ENGINES = {"onnxruntime", "hibari", "piper", "voicegui.server.engines.hibari", "voicegui.server.engines.piper"}
# What only playing or fetching needs: never before the arguments are checked.
PLAYBACK = {"openai", "httpx2", "aiohttp", "av", "sounddevice", "numpy", "pydantic"}


def imported(*argv: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """(every module `python -X importtime ARGV` imported, the finished process), run from the checkout
    (ARGV may start with interpreter options such as -S)."""
    env = dict(os.environ, OPENAI_API_KEY="sk-startup-test")
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.MULTILINE))
    assert "voicegui" in modules, proc.stderr[-2000:]  # the lines were read at all
    return modules, proc


def loaded(modules: set[str], names: set[str]) -> set[str]:
    """The names in `names` of which the module or a submodule was imported."""
    return {n for n in names if any(m == n or m.startswith(n + ".") for m in modules)}


def test_the_hand_off_to_a_window_imports_only_what_it_uses():
    """`voicegui speak`/`stop` handed to a running window: the whole process is ~100 ms of CPU, so the modules
    its path imports matter (asyncio ~35 ms, dataclasses with inspect ~10 ms, tempfile ~8 ms: none is used)."""
    modules, _ = imported("-c", "import voicegui.cli.main")
    assert loaded(modules, {"asyncio", "dataclasses", "tempfile"}) == set()


# What cli.main loads before it could try the hand-off, and a handed-over command does not need: argument
# parsing, logging, pathlib (with urllib.parse, ipaddress, fnmatch), typing, the crash log's redaction.
NOT_FOR_A_HAND_OFF = {"argparse", "logging", "pathlib", "typing", "gettext", "voicegui.cli.main",
                      "voicegui.cli.args", "voicegui.crash", "voicegui.formats", "voicegui.request_extras"}


@pytest.mark.parametrize("argv", [["speak", "Handed over."], ["stop"], ["speak", "--clipboard"]])
def test_a_handed_over_command_imports_only_the_hand_off(window, argv):
    """`voicegui speak`/`stop` taken by a window is a whole process whose start-up is most of its CPU: it
    imports cli.entry, cli.handoff and instance_protocol and nothing of NOT_FOR_A_HAND_OFF. Run with -S: the
    site-packages .pth files (the editable install's finder imports pathlib, re, typing...) would hide what
    the hand-off itself imports; a hand-off needs nothing from site-packages."""
    modules, proc = imported("-S", "-m", "voicegui", *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(window.requests) == 1
    assert {"voicegui.cli.entry", "voicegui.cli.handoff", "voicegui.instance_protocol"} <= modules
    assert loaded(modules, NOT_FOR_A_HAND_OFF) == set()


def test_importing_the_cli_loads_nothing_heavy():
    modules, _ = imported("-c", "import voicegui.cli.main")
    assert loaded(modules, QT | ENGINES | PLAYBACK) == set()


@pytest.mark.parametrize("argv", [["speak", "Hi.", "--help"], ["--help"], ["speak", "--help"]],
                         ids=["speak-text-help", "help", "speak-help"])
def test_speak_arguments_load_nothing_heavy(argv):
    modules, proc = imported("-m", "voicegui", *argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: voicegui" in proc.stdout
    # nor the other subcommands' modules (bench: numpy; voices: aiohttp)
    assert loaded(modules, QT | ENGINES | PLAYBACK | {"voicegui.cli.bench", "voicegui.cli.voices"}) == set()


def test_a_usage_error_stops_before_the_stack_is_needed():
    """An empty text is refused with its one line; what the background import had started does not hold up
    the exit or print anything."""
    _, proc = imported("-m", "voicegui", "speak", "  ")
    assert proc.returncode == 2
    # -X importtime lines of the background import thread can land inside the message's own line (the two
    # threads write stderr unsynchronised): cut each out wherever it starts.
    said = re.sub(r"import time:[^\n]*\n", "", proc.stderr)
    assert [ln for ln in said.splitlines() if ln] == ["voicegui: nothing to say: the text is empty"]


def test_other_subcommands_still_get_their_arguments():
    _, proc = imported("-m", "voicegui", "serve", "--help")
    assert proc.returncode == 0 and "--port" in proc.stdout, proc.stdout
    _, proc = imported("-m", "voicegui", "voices", "--speed", "1")
    assert proc.returncode == 2 and "unrecognized arguments: --speed" in proc.stderr


def test_speak_to_a_server_plays_without_qt_or_engines():
    server = PcmServer()
    modules, proc = imported("-m", "voicegui", "speak", "Hi.", "--base-url", server.base_url, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(server.arrivals) == 1
    assert '"completed": true' in proc.stdout
    assert loaded(modules, QT | ENGINES | {"voicegui.server"}) == set()


@pytest.mark.skipif(espeak_missing() is not None, reason="espeak-ng is not installed")
def test_speak_with_espeak_loads_no_neural_engine():
    modules, proc = imported("-m", "voicegui", "speak", "Hi.", "--voice", "espeak:en-us", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"completed": true' in proc.stdout
    assert loaded(modules, QT | {"onnxruntime", "hibari", "piper"}) == set()


@pytest.mark.skipif(hibari_missing() is not None, reason="hibari-tts is not installed")
def test_the_voices_model_loads_before_any_request():
    with BuiltinServer(lazy=True) as builtin:
        engine = builtin.engine.engine_for("heart")
        assert isinstance(engine, LazyEngine) and not engine.loaded
        # espeak-ng has nothing to load, and asking for it loads no other engine
        if espeak_missing() is None:
            assert load_voice_in_background(builtin.engine, "espeak:en-us") is None
        assert load_voice_in_background(builtin.engine, "no-such-voice") is None
        assert not engine.loaded
        thread = load_voice_in_background(builtin.engine, "heart")
        assert thread is not None
        thread.join(120)
        assert engine.loaded
        assert builtin.records == []  # no request was needed for it
        assert load_voice_in_background(builtin.engine, "heart") is None  # already loaded


def test_speak_sends_its_request_before_it_imports_the_audio_stack():
    """The request goes out as soon as the SDK is in (stream/early_fetch.py); numpy and PortAudio are imported
    (beside each other) after it, while the server works, and PyAV not at all for pcm. -vv logs the moment the
    request is sent; -X importtime writes each module's line when its import ends, on the same stderr, so their
    order is the order they happened."""
    server = PcmServer()
    _, proc = imported("-m", "voicegui", "-vv", "speak", "Hi.", "--base-url", server.base_url, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"completed": true' in proc.stdout and len(server.arrivals) == 1
    lines = proc.stderr.splitlines()
    sent = next(i for i, line in enumerate(lines) if "sending the speech request" in line)
    # sounddevice may be imported through importlib (cli.main starts PortAudio on a worker of its own), which
    # -X importtime does not time; its cffi modules are imported by plain import statements. Two workers import
    # at once here, and -X importtime's bookkeeping is not made for that: numpy's own line went missing (1 run
    # in ~15 on a loaded machine) while its submodules' were there. So the first line of numpy or of any of its
    # submodules counts (it ends no sooner than numpy's import began), and of either cffi module.
    audio: dict[str, int] = {}  # "numpy" / "portaudio" -> the index of its first line
    for i, line in enumerate(lines):
        if m := re.search(r"^import time:.*\|\s+(?:(numpy)(?:\.\S+)?|(_sounddevice|_cffi_backend))$", line):
            audio.setdefault("numpy" if m[1] else "portaudio", i)
    assert "numpy" in audio and "portaudio" in audio, "\n".join(lines[-40:])
    assert sent < min(audio.values()), "\n".join(lines[min(audio.values()) - 3:sent + 2])
    assert not any(re.search(r"^import time:.*\|\s+av$", line) for line in lines)  # pcm needs no FFmpeg


def test_the_voices_model_can_start_loading_before_the_server_starts():
    """BuiltinServer's before_start gets the engines and the default voice before the server thread exists
    (speak starts its voice's model there, so the load overlaps the server's imports and start)."""
    seen = []

    def servers() -> set[str]:
        return {t.name for t in threading.enumerate() if t.name.startswith("voicegui-server")}

    others = servers()  # other tests' servers in this process

    def before_start(engines, default):
        seen.append((engines.engine_for(default).name, default, servers() - others))

    with BuiltinServer(lazy=True, before_start=before_start) as builtin:
        assert len(seen) == 1
        name, default, servers_then = seen[0]
        assert default == builtin.default_voice and name == builtin.engine.engine_for(default).name
        assert servers_then == set()
        assert servers() - others  # and then it started
