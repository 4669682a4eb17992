"""Player: exactly one thing plays, the newest request wins, state callbacks, the history hook, the body cache.

Real sessions on the real null sink; the audio comes from a counting in-process source (the same signature as
fetch_speech), so no server is needed and the test sees every "request".
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voicegui.stream.fetch import SpeechRequest
from voicegui.stream.player import Playback, Player, PlayerState
from voicegui.stream.replay_source import replay_source
from voicegui.stream.session import SpeakOptions

pytestmark = [pytest.mark.audio, pytest.mark.played_clock]  # states asserted after sleeps of the played clock

RATE = 24000


def pcm(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2").tobytes()


class CountingSource:
    """A live "server": counts requests and sends `body` (as replay_source does, without pacing)."""

    def __init__(self, body: bytes) -> None:
        self.requests = 0
        self._replay = replay_source(body)

    async def __call__(self, req, marks, on_chunk) -> int:
        self.requests += 1
        return await self._replay(req, marks, on_chunk)


def options(source, text: str = "Hello.", **kwargs) -> SpeakOptions:
    request = SpeechRequest(base_url="http://127.0.0.1:9/v1", api_key="none", model="m", voice="v", text=text,
                            response_format="pcm")
    return SpeakOptions(request=request, source=source, **kwargs)


async def test_one_playback_runs_to_the_end_with_its_state_changes():
    player = Player()
    states: list[PlayerState] = []
    started: list[Playback] = []
    finished: list[Playback] = []
    player.on_state(states.append)
    player.on_started(started.append)
    player.on_finished(finished.append)
    playback = await player.play(options(CountingSource(pcm(0.3))))
    assert playback is not None and playback.metrics is not None
    assert playback.metrics.completed and playback.metrics.audio_played_s == pytest.approx(0.3, abs=0.01)
    assert states == [PlayerState.STARTING, PlayerState.PLAYING, PlayerState.IDLE]
    assert started == [playback] and finished == [playback]
    assert player.current is playback and player.session is playback.session and not player.is_busy()


async def test_the_newest_of_rapid_starts_is_the_only_one_that_plays():
    player = Player()
    source = CountingSource(pcm(0.2))
    # Five starts before the loop runs any of them: each overtakes the one before it before it began.
    tasks = [asyncio.ensure_future(player.start(options(source, text=f"{i}"))) for i in range(5)]
    playbacks = await asyncio.gather(*tasks)
    last = playbacks[-1]
    await last.done.wait()
    assert [p.entered_at is not None for p in playbacks] == [False] * 4 + [True]
    assert all(p.superseded and p.done.is_set() for p in playbacks[:-1])
    assert source.requests == 1 and last.metrics.completed


async def test_a_start_while_playing_stops_the_first_before_the_second_begins():
    player = Player()
    first = await player.start(options(CountingSource(pcm(3.0))))
    await asyncio.sleep(0.3)
    assert player.state is PlayerState.PLAYING
    second = await player.start(options(CountingSource(pcm(0.2))))
    assert first.done.is_set() and first.superseded and first.metrics.stopped
    await second.done.wait()
    assert first.left_at <= second.entered_at, "two sessions overlapped"
    assert second.metrics.completed


async def test_stop_silences_and_a_start_waiting_for_the_old_session_is_abandoned():
    player = Player()
    first = await player.start(options(CountingSource(pcm(3.0))))
    await asyncio.sleep(0.3)
    pending = asyncio.ensure_future(player.start(options(CountingSource(pcm(1.0)))))
    await asyncio.sleep(0)  # the second start is now waiting for the first to release the device
    await player.stop()
    assert await pending is None, "a start overtaken by stop() must not start"
    assert first.metrics.stopped and player.state is PlayerState.IDLE and player.current is first


async def test_history_hook_records_recorded_playbacks_and_close_waits_for_it():
    seen: list[Playback] = []
    disk_done = asyncio.Event()  # a slow disk: the hook finishes only when the test lets it

    async def hook(playback: Playback) -> None:
        await disk_done.wait()
        playback.history_ids.append("id")
        seen.append(playback)

    player = Player(history_hook=hook)
    recorded = await player.play(options(CountingSource(pcm(0.1))), extra={"ab_side": "A"})
    not_recorded = await player.play(options(CountingSource(pcm(0.1))), record=False)
    assert player.background_pending() == 1
    closing = asyncio.ensure_future(player.close())
    await asyncio.sleep(0.05)
    assert not closing.done(), "close() must wait for the history hook"
    disk_done.set()
    await closing
    assert seen == [recorded] and recorded.recorded.is_set() and recorded.history_ids == ["id"]
    assert not_recorded.recorded.is_set() and not not_recorded.history_ids
    assert await player.start(options(CountingSource(pcm(0.1)))) is None, "a closed player starts nothing"


async def test_body_cache_replays_a_whole_body_without_a_request_and_does_not_record_it_again():
    hooked: list[Playback] = []

    async def hook(playback: Playback) -> None:
        hooked.append(playback)

    player = Player(history_hook=hook)
    source = CountingSource(pcm(0.2))
    live = await player.play(options(source), use_cache=True)
    again = await player.play(options(source), use_cache=True)
    other_text = await player.play(options(source, text="Something else."), use_cache=True)
    await player.wait_background()
    assert source.requests == 2, "the second play of the same request must come from the cache"
    assert not live.replayed and again.replayed and not other_text.replayed
    assert again.metrics.completed and again.metrics.bytes_received == len(pcm(0.2))
    assert hooked == [live, other_text]


async def test_a_live_play_stopped_before_its_body_arrived_is_not_cached():
    player = Player()
    source = CountingSource(pcm(3.0))
    # A ring of 0.5 s: backpressure keeps most of the body unread when Stop comes.
    first = await player.start(options(source, max_buffer_s=0.5), use_cache=True)
    await asyncio.sleep(0.3)
    await player.stop()
    assert first.metrics.stopped and first.session.last_byte is None and len(player.cache) == 0


async def test_a_body_too_long_to_keep_is_not_cached():
    player = Player()
    source = CountingSource(pcm(0.5))

    def build() -> SpeakOptions:
        return options(source)

    first = await player.start(build, use_cache=True)
    first.session.max_original_bytes = 1000  # far less than the body: the session keeps none of it
    await first.done.wait()
    assert first.metrics.completed and first.session.original_truncated
    again = await player.play(options(source), use_cache=True)
    assert not again.replayed and source.requests == 2  # the empty "body" of the first was not cached


async def test_a_build_error_propagates_and_leaves_the_player_idle():
    player = Player()

    def build() -> SpeakOptions:
        raise ValueError("Choose a voice.")

    with pytest.raises(ValueError, match="Choose a voice"):
        await player.start(build)
    assert player.state is PlayerState.IDLE and player.current is None


# --- one device stream kept open between Playbacks ------------------------------------------------------------


@pytest.fixture
def device_opens(monkeypatch) -> list[object]:
    """Every PortAudio output stream constructed during the test (a counter around the real constructor)."""
    import sounddevice as sd

    opened: list[object] = []
    real_init = sd.OutputStream.__init__

    def counting_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(sd.OutputStream, "__init__", counting_init)
    return opened


def our_sink_inputs() -> int:
    """Streams of this process playing into the null sink, as PulseAudio sees them."""
    import os
    import subprocess

    res = subprocess.run(["pactl", "list", "sink-inputs"], capture_output=True, text=True, check=True)
    return res.stdout.count(f'application.process.id = "{os.getpid()}"')


async def test_speaks_in_a_row_share_one_device_stream_a_new_latency_reopens_and_close_releases(device_opens):
    import gc

    from voicegui.stream.output import OutputConfig

    gc.collect()  # the earlier tests' Players release their streams when they go (weakref.finalize)
    assert our_sink_inputs() == 0
    player = Player()
    try:
        first = await player.play(options(CountingSource(pcm(0.2))))
        second = await player.play(options(CountingSource(pcm(0.2))))
        assert first.metrics.completed and second.metrics.completed
        assert len(device_opens) == 1, "the second Speak opened the device again"
        assert player.output.stream is not None and player.output.stream.running  # idle: kept open
        assert our_sink_inputs() == 1
        high = await player.play(options(CountingSource(pcm(0.2)), output=OutputConfig(latency="high")))
        assert high.metrics.completed and len(device_opens) == 2  # other settings: closed and reopened
        assert our_sink_inputs() == 1, "the stream with the old settings was not closed"
    finally:
        await player.close()
    assert player.output.stream is None and our_sink_inputs() == 0, "close() left the device open"


async def test_rapid_starts_on_a_kept_stream_never_overlap(device_opens):
    player = Player()
    try:
        await player.play(options(CountingSource(pcm(0.1))))  # the stream is open and idle now
        playbacks = []
        # The clips that are to be cut short are long, so that no stall of a loaded machine between two
        # starts lets one of them finish on its own (it must be stopped by the next start).
        for seconds in (20.0, 20.0, 20.0, 1.0):
            playbacks.append(await player.start(options(CountingSource(pcm(seconds)))))
            await asyncio.sleep(0.05)
        await playbacks[-1].done.wait()
    finally:
        await player.close()
    for before, after in zip(playbacks, playbacks[1:], strict=False):
        assert before.metrics.stopped and before.left_at <= after.entered_at, "two sessions overlapped"
        # Stopped: it handed the device nothing after it was told to stop, and never more than it had.
        assert before.metrics.audio_played_s < 20.0
    assert playbacks[-1].metrics.completed and playbacks[-1].metrics.audio_played_s == pytest.approx(1.0, abs=0.01)
    assert len(device_opens) == 1
