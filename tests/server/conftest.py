"""Fixtures shared by the built-in server's tests: the real espeak-ng engine (skipped where it is not installed)."""

from __future__ import annotations

import pytest

from voicegui.server.engines import espeak as espeak_mod


@pytest.fixture(scope="module")
def espeak_engine() -> espeak_mod.EspeakEngine:
    hint = espeak_mod.missing()
    if hint:
        pytest.skip(hint)
    return espeak_mod.EspeakEngine()
