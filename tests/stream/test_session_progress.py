"""A long text's progress in SpeakSession.snapshot(): which piece is fetched and which is heard, where each piece's
audio starts, and the played-audio clock.

The real built-in server (BuiltinServer, replay engine: every request is the same clip) over HTTP on 127.0.0.1,
real decoding, real playback on the PulseAudio null sink; the test samples snapshots while the session runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from voicegui.server.benchclip import write_clip
from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.session import Snapshot, SpeakOptions, SpeakSession

pytestmark = pytest.mark.audio

CLIP_S = 0.6  # each piece's audio: the replay engine sends the clip for every request
PIECES = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from voicegui.server.embedded import BuiltinServer
    from voicegui.server.engines.replay import ReplayEngine

    clip = write_clip(Path(tmp_path_factory.mktemp("clip")) / "clip.wav", CLIP_S)
    with BuiltinServer(engines=[ReplayEngine(clip)]) as srv:
        yield srv


def long_options(server, fmt: str = "pcm") -> SpeakOptions:
    first = SpeechRequest(base_url=server.base_url, api_key=server.token, model="tts-1", voice="alloy",
                          text="Piece one. It has two sentences.", response_format=fmt)
    rest = tuple(dataclasses.replace(first, text=f"Piece {n}.") for n in ("two", "three"))
    return SpeakOptions(request=first, continuation=rest)


async def run_sampling(session: SpeakSession) -> list[Snapshot]:
    """Run the session to its end, taking a snapshot every 20 ms meanwhile (and one at the end)."""
    task = asyncio.ensure_future(session.run())
    snaps: list[Snapshot] = []
    while not task.done():
        snaps.append(session.snapshot())
        await asyncio.sleep(0.02)
    metrics = await task
    assert metrics.completed, metrics.error
    snaps.append(session.snapshot())
    return snaps


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
async def test_snapshot_says_which_piece_is_fetched_and_heard_on_the_played_clock(server, fmt):
    session = SpeakSession(long_options(server, fmt))
    snaps = await run_sampling(session)
    end = snaps[-1]
    assert end.piece_count == PIECES and end.fetch_done
    # Where each piece starts is exact: the decoded audio before it (pcm: sample for sample the clip's length).
    assert len(end.piece_starts_s) == PIECES
    if fmt == "pcm":
        assert end.piece_starts_s == pytest.approx([0.0, CLIP_S, 2 * CLIP_S], abs=1e-9)
    else:  # mp3: each piece is the clip plus the encoder's padding to whole frames, decoded alike each time
        lengths = [b - a for a, b in zip(end.piece_starts_s, end.piece_starts_s[1:], strict=False)]
        assert lengths[0] == lengths[1] and CLIP_S <= lengths[0] < CLIP_S + 0.1, lengths
    # Played out: the clock is all the audio, heard in the last piece.
    assert end.played_s == pytest.approx(end.audio_received_s, abs=1e-9)
    assert end.piece_playing == PIECES - 1

    playing = [s.piece_playing for s in snaps]
    clock = [s.played_s for s in snaps]
    assert set(playing) == set(range(PIECES)), playing  # each piece was heard in turn...
    assert playing == sorted(playing) and clock == sorted(clock)  # ...forward only, on a clock that never goes back
    for s in snaps:
        # The clock is what the device played, never what merely arrived; a piece is heard only once fetched,
        # and the piece heard is the one whose audio span holds the clock.
        assert s.played_s <= s.audio_received_s + 1e-9
        assert s.piece_playing <= s.piece_fetching < PIECES
        assert s.piece_starts_s[s.piece_playing] <= s.played_s
        if s.piece_playing + 1 < len(s.piece_starts_s):
            assert s.played_s < s.piece_starts_s[s.piece_playing + 1]
    # While the first piece was still the one heard, the session was already fetching a later one (the server
    # is faster than real time): fetching and hearing are told apart.
    assert any(s.piece_playing == 0 and s.piece_fetching > 0 for s in snaps)
    # Before the device played anything (prebuffering), the clock stood at zero.
    assert snaps[0].played_s == 0.0


async def test_the_played_clock_stops_at_stop(server):
    session = SpeakSession(long_options(server))
    task = asyncio.ensure_future(session.run())
    while session.snapshot().played_s < 0.2:
        await asyncio.sleep(0.01)
    session.stop()
    metrics = await task
    assert metrics.stopped
    after = session.snapshot()
    assert after.state == "stopped"
    assert 0.2 <= after.played_s <= metrics.audio_played_s  # frozen where the device stopped, not received
    await asyncio.sleep(0.1)
    assert session.snapshot().played_s == after.played_s


async def test_a_scalar_only_snapshot_says_what_the_full_one_says_without_the_arrays(server):
    """The progress line, the readout and A/B poll `snapshot(arrays=False)`: the same state, clock and piece
    numbers as the plots' full snapshot, taken with the loop paused between the two, but no histories."""
    session = SpeakSession(long_options(server))
    task = asyncio.ensure_future(session.run())
    compared = 0
    array_fields = {"history_t", "history_ms", "history_gate_ms", "history_playing", "waveform", "underrun_t"}
    while not task.done():
        full, light = session.snapshot(), session.snapshot(arrays=False)
        if session.state in ("playing", "draining") and full.history_t.size:
            for field in dataclasses.fields(Snapshot):
                if field.name in array_fields or field.name in ("buffered_ms", "played_s", "frames_played"):
                    continue  # the arrays differ on purpose; the device's counters move between two calls
                assert getattr(light, field.name) == getattr(full, field.name), field.name
            assert light.played_s == pytest.approx(full.played_s, abs=0.05)
            assert light.history_t.size == light.waveform.size == 0
            compared += 1
        await asyncio.sleep(0.02)
    assert (await task).completed
    assert compared > 5
