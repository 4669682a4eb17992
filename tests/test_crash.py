"""voicegui.crash: uncaught exceptions (main thread, threads, asyncio) go to a rotating, redacted log file and
to one dialog at a time; no API key is ever written by logging, nor by a whole CLI speak at -vv."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from voicegui import crash

KEY = "sk-test-SECRET123"


@pytest.fixture
def logdir(tmp_path, monkeypatch):
    path = tmp_path / "logs"
    monkeypatch.setenv("VOICEGUI_LOG_DIR", str(path))
    crash.uninstall()
    yield path
    crash.uninstall()


def log_text(path: Path) -> str:
    for handler in logging.getLogger("voicegui").handlers:
        handler.flush()
    return "".join(p.read_text() for p in sorted(path.glob("voicegui.log*")))


# --- redaction --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,kept", [
    (f"key is {KEY}", "key is"),
    ("Authorization: Bearer abc.DEF-123_xyz", "Authorization"),
    ("headers={'authorization': 'Bearer kokoro-local-token'}", "headers"),
    ('{"api_key": "my-local-key-42", "model": "tts-1"}', '"model": "tts-1"'),
    ("SpeechRequest(base_url='http://x/v1', api_key='plainsecret99', model='m')", "model='m'"),
    ("https://x/v1?api_key=querysecret77&voice=alloy", "voice=alloy"),
    ("sk-proj-AbCdEfGh1234567890_-xyz", ""),
])
def test_redact_removes_keys_and_keeps_the_rest(text, kept):
    out = crash.redact(text)
    assert crash.REDACTED in out
    for secret in (KEY, "abc.DEF-123_xyz", "kokoro-local-token", "my-local-key-42", "plainsecret99",
                   "querysecret77", "AbCdEfGh1234567890"):
        assert secret not in out
    assert kept in out


def test_redact_leaves_ordinary_text_alone():
    text = "max_tokens=100, task-runner ok, disk-usage 5%, the voice 'alloy' at 24000 Hz"
    assert crash.redact(text) == text


def test_registered_secret_is_redacted_even_without_a_key_shape():
    crash.register_secret("kokoro7731")
    assert "kokoro7731" not in crash.redact("token kokoro7731 sent")


def test_log_records_from_any_logger_are_redacted(tmp_path):
    crash.install_log_redaction()
    out = tmp_path / "all.log"
    handler = logging.FileHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("voicegui.stream.fetch").warning("sending key %s", KEY)
        logging.getLogger("openai._base_client").debug("headers: %r", {"Authorization": f"Bearer {KEY}"})
        try:
            raise RuntimeError(f"failed with {KEY}")
        except RuntimeError:
            logging.getLogger("voicegui.ui").exception("oops")
        logging.getLogger("voicegui").info("stack", stack_info=True, extra={})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    text = out.read_text()
    assert KEY not in text and "SECRET123" not in text
    assert text.count(crash.REDACTED) >= 3 and "RuntimeError: failed with [REDACTED]" in text


@pytest.mark.parametrize("text,secret,kept", [
    ("GET https://tts.example/v1/models?key=AIzaShort&alt=json", "AIzaShort", "alt=json"),
    ("https://x/v1/audio/speech?sig=a1&voice=alloy", "sig=a1", "voice=alloy"),
    ("https://x/v1?access_token=tok9&x=1", "tok9", "x=1"),
    ("base URL http://admin:hunter2@10.0.0.5:8880/v1 refused", "hunter2", "10.0.0.5:8880/v1"),
])
def test_redact_removes_secrets_in_urls(text, secret, kept):
    out = crash.redact(text)
    assert secret not in out and crash.REDACTED in out and kept in out


def test_redact_leaves_an_ordinary_url_alone():
    text = "http://127.0.0.1:8880/v1/audio/speech?voice=alloy&format=mp3 and http://host:8080/v1"
    assert crash.redact(text) == text


# --- hooks -------------------------------------------------------------------------------------------------------


def test_thread_exception_is_logged_redacted_and_shown_once_at_a_time(logdir):
    shown: list[str] = []
    crash.install_excepthook(shown.append)

    def boom(n: int) -> None:
        raise RuntimeError(f"thread failure {n} with {KEY}")

    for n in range(3):
        t = threading.Thread(target=boom, args=(n,), name=f"worker-{n}")
        t.start()
        t.join()
    assert len(shown) == 1  # the first dialog is still open: the other two are only logged
    assert "thread failure 0" in shown[0] and KEY not in shown[0] and str(logdir) in shown[0]
    crash.dialog_closed()
    t = threading.Thread(target=boom, args=(3,), name="worker-3")
    t.start()
    t.join()
    assert len(shown) == 2 and "thread failure 3" in shown[1]
    text = log_text(logdir)
    for n in range(4):
        assert f"RuntimeError: thread failure {n} with [REDACTED]" in text
    assert "worker-2" in text and "Traceback" in text and KEY not in text


def test_a_failing_show_is_logged_and_releases_the_flag(logdir):
    calls = []

    def bad_show(text: str) -> None:
        calls.append(text)
        raise ValueError("dialog broke")

    crash.install_excepthook(bad_show)
    for _ in range(2):
        t = threading.Thread(target=lambda: 1 / 0)
        t.start()
        t.join()
    assert len(calls) == 2 and not crash.dialog_open()
    assert "showing the crash dialog failed" in log_text(logdir)


def test_asyncio_loop_handler_logs_callback_errors(logdir):
    shown: list[str] = []
    crash.install_excepthook(shown.append)

    async def main() -> None:
        crash.install_loop_handler()
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: (_ for _ in ()).throw(KeyError(f"lost {KEY}")))
        await asyncio.sleep(0.05)

    asyncio.run(main())
    text = log_text(logdir)
    assert "in the event loop" in text and "KeyError" in text and KEY not in text
    assert len(shown) == 1 and "KeyError" in shown[0]


def test_main_thread_exception_goes_to_the_log_and_stderr(tmp_path):
    logs = tmp_path / "logs"
    script = textwrap.dedent(f"""
        import sys
        from voicegui import crash
        crash.install_excepthook(lambda text: sys.stdout.write("SHOWN " + text + "\\n"))
        raise RuntimeError("main failure with {KEY}")
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, VOICEGUI_LOG_DIR=str(logs)))
    assert res.returncode == 1
    text = (logs / "voicegui.log").read_text()
    assert "RuntimeError: main failure with [REDACTED]" in text and "Traceback" in text
    assert "SHOWN voicegui hit an unexpected error in the main thread" in res.stdout
    assert KEY not in text + res.stdout + res.stderr


def test_log_file_rotates_and_stays_bounded(logdir):
    crash.install_excepthook(None)
    noisy = logging.getLogger("voicegui.test")
    line = "x" * 2000
    for i in range(1500):  # ~3 MB of warnings
        noisy.warning("%d %s", i, line)
    files = sorted(logdir.glob("voicegui.log*"))
    assert 2 <= len(files) <= 1 + crash.LOG_BACKUPS
    assert all(f.stat().st_size <= crash.LOG_MAX_BYTES + 4096 for f in files)


def test_log_file_is_private_even_if_an_old_one_was_not(logdir):
    """The log holds server messages and paths: 0600 whatever the umask, also for a 0644 file left by an
    older version and for the files rotation starts."""
    logdir.mkdir(parents=True)
    old = logdir / crash.LOG_FILE
    old.write_text("old line\n")
    old.chmod(0o644)
    previous = os.umask(0o022)
    try:
        crash.install_excepthook(None)
        logging.getLogger("voicegui.test").warning("one line")
        log_text(logdir)
        assert old.stat().st_mode & 0o777 == 0o600
        crash.uninstall()
        old.unlink()
        crash.install_excepthook(None)
        for i in range(600):  # > LOG_MAX_BYTES: at least one rollover
            logging.getLogger("voicegui.test").warning("%d %s", i, "y" * 2000)
        log_text(logdir)
    finally:
        os.umask(previous)
    files = sorted(logdir.glob("voicegui.log*"))
    assert len(files) >= 2
    assert [oct(f.stat().st_mode & 0o777) for f in files] == [oct(0o600)] * len(files)


def test_crash_report_logs_the_length_of_the_spoken_text_not_the_text(logdir):
    """A crash whose message carries the request (its repr, or the JSON body) must not copy what the user
    had read aloud into the log file or the dialog."""
    from voicegui.stream.fetch import SpeechRequest

    said = "my bank PIN is 4711, please read it back"
    request = SpeechRequest(base_url="http://127.0.0.1:1/v1", api_key=KEY, model="tts-1", voice="alloy",
                            text=said, response_format="pcm")
    shown: list[str] = []
    crash.install_excepthook(shown.append)

    def boom() -> None:
        raise RuntimeError(f"cannot send {request!r} as {{\"input\": \"{said}\", \"voice\": \"alloy\"}}")

    t = threading.Thread(target=boom, name="worker-text")
    t.start()
    t.join()
    text = log_text(logdir)
    assert "RuntimeError: cannot send SpeechRequest(" in text and "model='tts-1'" in text
    assert f"<{len(said)} characters>" in text
    # "PIN is 4711", not "4711" alone: a log's addresses, times or process ids may hold those digits by chance
    assert said not in text and "PIN is 4711" not in text and KEY not in text
    assert len(shown) == 1 and "PIN is 4711" not in shown[0] and f"<{len(said)} characters>" in shown[0]


def test_unwritable_log_dir_does_not_stop_the_app(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("VOICEGUI_LOG_DIR", str(blocker / "logs"))
    crash.uninstall()
    try:
        crash.install_excepthook(None)  # no exception
    finally:
        crash.uninstall()


# --- the key never lands anywhere ----------------------------------------------------------------------------


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_cli_speak_never_writes_the_api_key(tmp_path):
    """voicegui -vv speak with a known key, --json and --out, both a good run and a rejected one: the key
    appears in no file written (log dir, out file, config/state dirs) and not on stdout/stderr."""
    from voicegui.server.benchclip import write_clip
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread

    clip = write_clip(tmp_path / "clip.wav", 0.3)
    home = tmp_path / "home"
    env = dict(os.environ, VOICEGUI_LOG_DIR=str(tmp_path / "logs"), HOME=str(home),
               XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".state"),
               XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local"), OPENAI_API_KEY=KEY)
    outputs = []
    with ServerThread(ReplayEngine(clip), token=KEY) as srv:
        for i, key in enumerate((KEY, KEY + "x")):  # accepted, then rejected (401)
            out = tmp_path / f"out{i}.wav"
            # The last run takes the key from $OPENAI_API_KEY instead of the command line.
            cmd = [sys.executable, "-m", "voicegui", "-vv", "speak", "Hello.", "--base-url", srv.base_url,
                   "--api-key", key, "--model", "tts-1", "--voice", "alloy", "--format", "mp3",
                   "--json", "--out", str(out)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
            outputs.append(res)
            assert res.returncode == (0 if i == 0 else 1), res.stderr
        res = subprocess.run([sys.executable, "-m", "voicegui", "-vv", "speak", "Hello.", "--base-url",
                              srv.base_url, "--model", "tts-1", "--voice", "alloy", "--json"],
                             capture_output=True, text=True, timeout=60, env=env)
        assert res.returncode == 0, res.stderr
        outputs.append(res)
    assert "DEBUG" in outputs[0].stderr  # -vv really logged (the openai/httpx debug lines included)
    written = _files_under(tmp_path / "logs") if (tmp_path / "logs").exists() else []
    written += _files_under(home) if home.exists() else []
    written += [tmp_path / "out0.wav", tmp_path / "out1.wav"]
    needles = (KEY.encode(), b"SECRET123")
    for path in written:
        if path.exists():
            data = path.read_bytes()
            assert not any(n in data for n in needles), path
    for res in outputs:
        assert "SECRET123" not in res.stdout and "SECRET123" not in res.stderr


def test_in_process_debug_logging_of_a_speak_never_contains_the_key(tmp_path, logdir):
    """The same with the hooks installed and every logger at DEBUG into a file (what -vv does plus the log file)."""
    from voicegui.server.benchclip import write_clip
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.thread import ServerThread
    from voicegui.stream.fetch import SpeechRequest
    from voicegui.stream.session import SpeakOptions, SpeakSession

    crash.install_excepthook(None)
    everything = tmp_path / "debug.log"
    handler = logging.FileHandler(everything)
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        clip = write_clip(tmp_path / "clip.wav", 0.3)
        with ServerThread(ReplayEngine(clip), token=KEY) as srv:
            for key in (KEY, KEY + "x"):
                req = SpeechRequest(base_url=srv.base_url, api_key=key, model="tts-1", voice="alloy",
                                    text="Hello.", response_format="opus")
                session = SpeakSession(SpeakOptions(request=req))
                logging.getLogger("voicegui.test").debug("request %r", req)  # a careless repr
                metrics = asyncio.run(session.run())
                assert metrics.completed == (key == KEY), metrics.error
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
        handler.close()
    text = everything.read_text() + log_text(logdir)
    assert "api_key='[REDACTED]'" in text
    assert "SECRET123" not in text


def test_log_folder_is_made_at_the_first_warning_not_at_install(tmp_path):
    """Finding the log folder imports platformdirs (~8 ms before a `voicegui speak`'s request), the handler
    logging.handlers (~3 ms): install makes nothing and imports neither; the first warning makes the folder and
    the file, and later ones are appended."""
    script = textwrap.dedent("""
        import logging, os, sys
        from pathlib import Path
        from voicegui import crash
        crash.install_excepthook(None)
        logging.getLogger("voicegui.test").info("an info line is not the log file's")
        print("after install:", "platformdirs" in sys.modules, "logging.handlers" in sys.modules,
              Path(os.environ["XDG_STATE_HOME"]).exists())
        logging.getLogger("voicegui.test").warning("first warning")
        logging.getLogger("voicegui.test").warning("second warning")
        for handler in logging.getLogger("voicegui").handlers:
            handler.flush()
        print("after warnings:", "platformdirs" in sys.modules)
    """)
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "VOICEGUI_LOG_DIR"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=dict(env, XDG_STATE_HOME=str(state)))
    assert res.returncode == 0, res.stderr
    assert "after install: False False False" in res.stdout
    assert "after warnings: True" in res.stdout
    files = list(state.rglob(crash.LOG_FILE))
    assert len(files) == 1
    text = files[0].read_text()
    assert "first warning" in text and "second warning" in text and "info line" not in text


def test_an_unwritable_log_folder_is_one_warning_and_loses_nothing_else(tmp_path, monkeypatch, capsys):
    """The folder cannot be made (a file stands where it should be): one warning, and the records still reach
    the application's own handlers (stderr for the CLI)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("VOICEGUI_LOG_DIR", str(blocker / "logs"))
    crash.uninstall()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep(logging.WARNING)
    logging.getLogger("voicegui").addHandler(keep)
    try:
        crash.install_excepthook(None)
        logging.getLogger("voicegui.test").warning("first")
        logging.getLogger("voicegui.test").warning("second")
    finally:
        logging.getLogger("voicegui").removeHandler(keep)
        crash.uninstall()
    cannot = [m for m in seen if m.startswith("cannot write the log file in")]
    assert len(cannot) == 1 and str(blocker / "logs") in cannot[0]
    assert "first" in seen and "second" in seen
