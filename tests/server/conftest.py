"""Fixtures for the server tests: the built-in server replaying a 2 s clip (tests/replay_server.py) and the
espeak-ng engine (skipped where espeak-ng is not installed)."""

from __future__ import annotations

import pytest

from tests.replay_server import engine, server  # noqa: F401 (pytest fixtures, found by name)
from voicegui.server.engines import espeak as espeak_mod


@pytest.fixture(scope="module")
def espeak_engine() -> espeak_mod.EspeakEngine:
    hint = espeak_mod.missing()
    if hint:
        pytest.skip(hint)
    return espeak_mod.EspeakEngine()
