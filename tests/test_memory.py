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
