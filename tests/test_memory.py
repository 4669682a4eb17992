"""Memory at idle (issue 17): what importing the window loads before its first Speak, and what the hibari
voice holds once loaded and warm. Each check runs in a fresh Python process (the test process itself has
imported everything already), on this checkout's source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> dict:
    """Run `code` in a fresh interpreter on this checkout; it prints one JSON object, returned here."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["voicegui.ui.main_window", "voicegui.stream.player", "voicegui.providers",
                                    "voicegui.stream.realtime", "voicegui.settings"])
def test_the_window_loads_no_network_client_before_it_is_used(module):
    """The openai SDK (~1 s, ~56 MB) and aiohttp (~0.3 s) load on the first request that needs them, not
    with the window: a window left idle never pays for them."""
    loaded = run_python(f"""
        import json, sys
        import {module}
        print(json.dumps({{"loaded": sorted(m for m in ("openai", "httpx2", "aiohttp") if m in sys.modules)}}))
    """)["loaded"]
    assert loaded == [], f"importing {module} loads {', '.join(loaded)}"


def test_the_first_speak_imports_the_sdk_off_the_loop_thread():
    """The SDK is imported on the first request, in a worker thread: the loop (the window's GUI thread) keeps
    running meanwhile. The request goes to a closed port on 127.0.0.1 and fails as usual, in one sentence."""
    out = run_python("""
        import asyncio, json, socket, sys, threading

        importers = []

        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name == "openai":
                    importers.append(threading.current_thread().name)
                return None

        sys.meta_path.insert(0, Watch())
        from voicegui.stream.fetch import FetchError, FetchMarks, SpeechRequest, fetch_speech

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]

        async def main():
            req = SpeechRequest(f"http://127.0.0.1:{port}/v1", "", "tts-1", "alloy", "Hello.", "pcm", timeout_s=5)
            async def ignore(chunk): pass
            try:
                await fetch_speech(req, FetchMarks(), ignore)
            except FetchError as exc:
                return exc.kind, str(exc)
            return None, None

        kind, message = asyncio.run(main())
        print(json.dumps({"importers": importers, "loop_thread": threading.current_thread().name,
                          "kind": kind, "message": message}))
    """)
    assert out["importers"], "the request did not import the SDK"
    assert out["loop_thread"] not in out["importers"]
    assert out["kind"] == "connection" and "Could not connect" in out["message"]
