"""Soak through the window: 120 Speaks in a row must not leak threads, descriptors or memory, each plays whole.

The CLI half is tests/e2e/test_soak.py; this is the same measurement with the whole window in the loop:
the MainWindow under pytest-qt on its qasync loop, speaking through its `speak` slot with the format picker
cycling over the six formats, against a built-in server (the real BuiltinServer class) replaying a 0.05 s
clip as fast as it encodes, into the PulseAudio null sink. Each Speak is awaited to its end (its
Playback.done event and the history write it starts), never with qtbot.waitUntil (hangs under qasync).

After a warm-up of 60 Speaks (by then the Player.recent log of 50 Playbacks is full, so what the window keeps
on purpose no longer grows) the process's threads (/proc/self/task), open descriptors (/proc/self/fd), RSS
and the Python heap (tracemalloc, every thread: window, client and the in-process server) are sampled, again
at 90 and at 120; at 120 they must be within a small bound of the warm-up figures. What the window keeps on
purpose is accounted for in the bounds below: the last Player.recent (50) Playbacks, and the history (one
index entry per Speak in memory, and the clip's bytes on disk under the per-test $VOICEGUI_CACHE_DIR).
A leak is per Speak: 60 Speaks in the steady state show it as well as the 180 from a half-full log did.

The figures are printed (pytest -s shows them) for the README.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc

import pytest

from tests.procstats import fds, rss_mb, threads
from tests.ui.conftest import close_window, open_window

pytestmark = [pytest.mark.audio, pytest.mark.timeout(300)]

FORMATS = ["pcm", "wav", "mp3", "opus", "aac", "flac"]
CLIP_S = 0.05
RATE = 24000
WARMUP = 60
MIDWAY = 90
SPEAKS = 120
# Bounds at 120 Speaks against the figures after the 60-Speak warm-up.
# Threads/fds: a pooled worker or a lazily opened library handle may appear once; a leak per Speak would be
# 60+. The history writes and PortAudio streams are all closed when a Speak (and its history write) ends.
MAX_EXTRA_THREADS = 2
MAX_EXTRA_FDS = 4
# Python heap, net of the Player.recent's arrays (_kept_mb): with the log full, one HistoryEntry in the store's
# memory and one server RequestRecord per Speak: measured +0.4 MB over 90 Speaks (~4.5 KB/Speak), +0.5 MB in the
# fresh-root CI (~5.8 KB/Speak) with the 200-Speak soak; +0.29 MB over Speaks 60..120 (4.8 KB/Speak) here.
# 0.7 MB fails any leak of ~6 KB/Speak on top of that (as 3.0 MB over 180 Speaks from a half-full log did); a
# kept 8 KB per Speak failed it. A leaked session (its arrays alone ~21 KB, _kept_mb) fails too.
MAX_PY_HEAP_GROWTH_MB = 0.7
# RSS: allocator behaviour dominates (see tests/e2e/test_soak.py: glibc arenas for the per-Speak threads,
# FFmpeg/OpenSSL churn, +17 MB then +11 MB over two halves of 90 Speaks in the CLI soak); the window adds Qt's
# own native heap (the history table grows a row per Speak, plots redraw per Speak). Measured, net of the
# Player.recent's arrays: +48 MB over Speaks 20..200 (the log filling, the allocator warming up), +4.5 MB in the
# last 90; +2.7 MB over Speaks 60..120 and +1.7 MB over 90..120 here. A native leak of ~280 KB/Speak fails.
MAX_RSS_GROWTH_MB = 20.0
MAX_RSS_GROWTH_SECOND_HALF_MB = 10.0


@pytest.fixture(scope="module")
def soak_builtin(tmp_path_factory):
    """The built-in server class serving only a 0.05 s replay clip, default shaping (as fast as it encodes)."""
    from voicegui.server.benchclip import write_clip
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine
    from voicegui.server.shaping import Shaping

    path = write_clip(tmp_path_factory.mktemp("window-soak") / "clip.wav", CLIP_S)
    with BuiltinServer(engines=[ReplayEngine(path)], shaping=Shaping(write_bytes=16384)) as srv:
        yield srv


def _kept_mb(window) -> float:
    """What the window's Player.recent keeps on purpose: the arrays and response bodies of its last 50 sessions
    (each session's 10 s ring and 10 s played-audio ring, its waveform tail and the original bytes)."""
    total = 0
    for playback in window.playbacks:
        s = playback.session
        for ring in (s._ring, s._played):
            total += 0 if ring is None else ring._buf.nbytes
        total += sum(len(b) for b in s._originals)
        total += sum(c.nbytes for c in getattr(s, "_played_chunks", None) or ())
        # the waveform's tail and the plots' history (time, buffer level, the gate in force, playing or not),
        # append-only tables grown as the Speak went
        total += sum(rows._data.nbytes for rows in (s._waveform, s._history) if rows is not None)
    return total / 2**20


def _sample(window) -> dict[str, float]:
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] / 2**20
    return {"threads": threads(), "fds": fds(), "rss_mb": round(rss_mb(), 1), "py_heap_mb": round(heap, 3),
            "kept_mb": round(_kept_mb(window), 3), "sessions_kept": len(window.playbacks),
            "history": len(window.history.entries()),
            "kept_opus": sum(p.request.response_format == "opus" for p in window.playbacks)}


def _played_ok(fmt: str, frames: int) -> bool:
    want = int(CLIP_S * RATE)
    if fmt in ("pcm", "wav", "flac"):
        return frames == want  # exact formats: every sample
    # lossy: the whole clip (within a frame), plus at most the encoder's end padding (see test_soak.py)
    return want - 0.005 * RATE <= frames <= want + 0.1 * RATE


async def _speak(window, fmt: str):
    """One Speak through the window's slot with `fmt` picked; waits for its end and its history write."""
    window.format.setCurrentText(fmt)
    assert window.format.currentText() == fmt
    last = window.playbacks[-1] if window.playbacks else None
    task = window.speak()  # the asyncSlot: returns the task that stops the old Speak and starts this one
    await asyncio.wait_for(task, 10)
    assert window.playbacks and window.playbacks[-1] is not last, "the Speak did not start"
    playback = window.playbacks[-1]
    await asyncio.wait_for(playback.done.wait(), 15)
    await asyncio.wait_for(playback.recorded.wait(), 5)  # the history write
    return playback


async def test_120_window_speaks_do_not_leak(qtbot, soak_builtin):
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start(1)  # before the warm-up, so the sampled heap is the steady state
    window = await open_window(soak_builtin, text="Soak.", fmt=None)
    try:
        await _soak(window)
    finally:
        await close_window(window)
        if not tracing:
            tracemalloc.stop()


async def _soak(window) -> None:
    samples: dict[int, dict[str, float]] = {}
    failures: list[str] = []
    started = time.monotonic()
    # qasync's default executor (asyncio.to_thread, run_in_executor(None)) is a fixed pool of 10 QThreads,
    # all started by its first use: start it now, so that the warm-up figures include it.
    await asyncio.get_running_loop().run_in_executor(None, lambda: None)
    for i in range(SPEAKS):
        if i in (WARMUP, MIDWAY):
            await asyncio.sleep(0.2)  # let executor workers that just finished settle, as at the end
            samples[i] = _sample(window)
        fmt = FORMATS[i % len(FORMATS)]
        playback = await _speak(window, fmt)
        m = playback.metrics
        session = playback.session
        played = session.snapshot().frames_played
        if m is None or not m.completed or m.error or played != session.frames_received or \
                not _played_ok(fmt, played) or abs(m.audio_played_s - played / RATE) > 1 / RATE:
            failures.append(f"#{i} {fmt}: completed={m and m.completed} error={m and m.error} "
                            f"received={session.frames_received} played={played}")
        del playback, m, session
    await asyncio.sleep(0.5)
    samples[SPEAKS] = _sample(window)
    elapsed = time.monotonic() - started
    print(f"\nwindow soak {SPEAKS} Speaks in {elapsed:.1f} s: {samples}")
    before, mid, after = samples[WARMUP], samples[MIDWAY], samples[SPEAKS]
    assert not failures, failures[:10]
    assert len(window.history.entries()) == SPEAKS and not window.banner.isVisible()
    # A kept opus session keeps its decoder, whose FFmpeg codec context keeps 2 worker threads (measured: +2
    # threads per opus Speak until the log is full, then flat): bounded by Player.recent, counted here.
    opus_growth = after["kept_opus"] - before["kept_opus"]
    assert after["threads"] <= before["threads"] + 2 * opus_growth + MAX_EXTRA_THREADS, samples
    assert after["threads"] <= mid["threads"] + MAX_EXTRA_THREADS, samples  # the log is full at both
    assert after["fds"] <= before["fds"] + MAX_EXTRA_FDS, samples
    # Net of what the Player.recent keeps on purpose (50 sessions at the warm-up and at the end).
    kept_growth = after["kept_mb"] - before["kept_mb"]
    assert after["py_heap_mb"] - before["py_heap_mb"] - kept_growth < MAX_PY_HEAP_GROWTH_MB, samples
    assert after["py_heap_mb"] - mid["py_heap_mb"] < MAX_PY_HEAP_GROWTH_MB, samples  # the log is full at both
    assert after["rss_mb"] - before["rss_mb"] - kept_growth < MAX_RSS_GROWTH_MB, samples
    assert after["rss_mb"] - mid["rss_mb"] < MAX_RSS_GROWTH_SECOND_HALF_MB, samples
