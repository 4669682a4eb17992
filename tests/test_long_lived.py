"""voicegui.long_lived: what start-up loaded is left out of later full garbage collections (a full pass held the
GIL ~50 ms in the window, longer than the device holds), cyclic garbage made later is still freed, and both the
window and `voicegui speak` freeze once their imports are done."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.replay_server import engine, server  # noqa: F401 (pytest fixtures, found by name)

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_full_collection_walks_only_what_was_made_after_the_freeze():
    out = run("""
        import gc, weakref
        import numpy, openai  # a start-up's worth of modules
        from voicegui.long_lived import freeze_loaded

        before = len(gc.get_objects())
        frozen = freeze_loaded("the test's imports")
        after = len(gc.get_objects())

        class Node:
            pass

        freed = []
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        weakref.finalize(a, freed.append, "a")
        del a, b
        gc.collect()
        print(before, frozen, after, freed)
    """)
    before, frozen, after, freed = out.split(maxsplit=3)
    assert int(before) > 20000 and int(frozen) >= int(before) - 100
    assert int(after) < 1000  # what a full collection still walks
    assert freed.strip() == "['a']"  # later garbage is still collected


def test_the_window_freezes_what_the_sdk_preload_loaded():
    """_preload_sdk (at the user's first sign of intent, after the start-up) leaves the objects loaded so far
    frozen."""
    out = run("""
        import asyncio, gc
        from voicegui.ui.app import _preload_sdk

        async def main():
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)  # the first sign of intent came, the start-up is over
            await _preload_sdk(done, done)

        asyncio.run(main())
        import openai  # what the step loaded is among the frozen
        print(gc.get_freeze_count(), len(gc.get_objects()))
    """)
    frozen, walked = map(int, out.split())
    assert frozen > 20000 and walked < frozen // 10


@pytest.mark.audio
def test_speak_freezes_its_audio_stack_before_it_plays(server):  # noqa: F811 (the fixture)
    proc = subprocess.run([sys.executable, "-m", "voicegui", "-vv", "speak", "Hi.", "--base-url", server.base_url,
                           "--model", "tts-1", "--voice", "alloy"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    frozen = [i for i, line in enumerate(lines) if "after speak's audio stack:" in line]
    opened = [i for i, line in enumerate(lines) if "output stream open" in line]
    assert len(frozen) == 1 and opened and frozen[0] < opened[0], proc.stderr
    count = int(re.search(r"(\d+) objects frozen", lines[frozen[0]]).group(1))
    assert count > 20000  # numpy, PortAudio, the decoders, the SDK
