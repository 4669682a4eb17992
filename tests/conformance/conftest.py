"""The conformance suite runs under `make conformance` (VOICEGUI_CONFORMANCE=1), which first installs what it
needs: the real encoders (Debian packages) and each third-party server's virtualenv. Anywhere else, e.g. in
the plain `make test` run, those tests are skipped with that sentence (the checks of the comparison itself,
test_compare.py, run everywhere); under `make conformance` a missing piece fails instead of skipping, so
nothing passes by not running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENABLED = os.environ.get("VOICEGUI_CONFORMANCE") == "1"
TEXT = "Hello there. This is a conformance test."
NEEDS_INSTALL = ("test_servers.py", "test_corpus.py")  # test_compare.py runs everywhere


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="the conformance suite runs with `make conformance` (VOICEGUI_CONFORMANCE=1)")
    here = Path(__file__).parent
    for item in items:
        path = Path(str(item.fspath))
        if path.parent == here and path.name in NEEDS_INSTALL:
            item.add_marker(skip)


def speak(base_url: str, fmt: str, out: Path, model: str = "tts-1", text: str = TEXT,
          timeout: float = 180) -> subprocess.CompletedProcess:
    """`voicegui speak` against `base_url` into the test null sink, what was played written to `out`."""
    cmd = [sys.executable, "-m", "voicegui", "speak", text, "--base-url", base_url,
           "--model", model, "--voice", "alloy", "--format", fmt, "--out", str(out), "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_API_KEY"] = "conformance"  # not --api-key, which (rightly) warns on stderr
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
