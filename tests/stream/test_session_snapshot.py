"""SpeakSession.snapshot() copies none of its arrays: the buffer-level history and the waveform are read-only views
of the session's append-only tables, and a snapshot taken earlier still shows what it showed then.

The window's plots take ~34 snapshots a second; copying a history near its 20,000-point cap on each cost several
ms. The built-in server (replay engine, 2 s clip, tests/replay_server.py) over HTTP on 127.0.0.1, real decoding
and playback on the PulseAudio null sink.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.stream.fetching import speech_request
from voicegui.stream.session import Snapshot, SpeakOptions, SpeakSession

pytestmark = pytest.mark.audio

ARRAYS = ("history_t", "history_ms", "history_gate_ms", "history_playing", "waveform")


async def test_snapshots_share_the_sessions_arrays_and_keep_what_they_showed(server):
    session = SpeakSession(SpeakOptions(request=speech_request(server.base_url, api_key=server.token)))
    task = asyncio.ensure_future(session.run())
    taken: list[tuple[Snapshot, dict[str, np.ndarray]]] = []
    shared = 0
    while not task.done():
        snap, again = session.snapshot(), session.snapshot()
        if len(snap.waveform) and len(again.history_t) == len(snap.history_t):
            # taken one after the other with nothing appended between: the same memory, not two copies
            assert all(np.shares_memory(getattr(snap, name), getattr(again, name)) for name in ARRAYS)
            shared += 1
        for name in ARRAYS:
            with pytest.raises(ValueError):
                getattr(snap, name)[:1] = 0  # read-only: a reader cannot change what another one sees
        taken.append((snap, {name: getattr(snap, name).copy() for name in ARRAYS}))
        await asyncio.sleep(0.03)
    metrics = await task
    assert metrics.completed, metrics.error
    assert shared > 10
    for snap, then in taken:  # unchanged by everything appended since (and by the end of the session)
        for name in ARRAYS:
            assert np.array_equal(getattr(snap, name), then[name]), name
    final = session.snapshot()
    t = final.history_t
    assert len(t) == len(final.history_ms) == len(final.history_gate_ms) == len(final.history_playing) > 50
    assert 0 <= t[0] and np.all(np.diff(t) > 0)  # seconds since the Speak, in order
    assert set(np.unique(final.history_playing)) <= {0.0, 1.0} and final.history_playing[-1] in (0.0, 1.0)
    assert 0 < len(final.waveform) <= 3.0 * (final.sample_rate or 24000)
