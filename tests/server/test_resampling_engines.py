"""`audio.RESAMPLING_ENGINES` names exactly the engines whose synthesis imports PyAV (to resample their voices'
rate to 24 kHz): `voicegui speak`'s voices process imports PyAV ahead for those (cli/builtin_process.py), and
for no other. Each engine that is installed here synthesises one sentence in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voicegui.server.engines.audio import RESAMPLING_ENGINES

SYNTHESIS = """
import asyncio, json, sys
from voicegui.server.engines.builtin import available_engines
engines, _hints = available_engines(warm=False, lazy=False)
engine = next(e for e in engines if e.name == NAME)
voice = engine.voices()[0].id
async def one():
    async for block in engine.synthesize("Hi.", voice, 1.0):
        return len(block)
print(json.dumps({"samples": asyncio.run(one()), "av": "av" in sys.modules}))
"""


def _installed() -> list[str]:
    from voicegui.server.engines.builtin import available_engines

    engines, _hints = available_engines(warm=False, lazy=True)
    return [engine.name for engine in engines]


@pytest.mark.parametrize("name", _installed())
def test_an_engine_imports_pyav_for_its_first_sentence_exactly_when_listed(name: str) -> None:
    done = subprocess.run([sys.executable, "-c", f"NAME = {name!r}\n{SYNTHESIS}"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["samples"] > 0
    assert result["av"] == (name in RESAMPLING_ENGINES)
