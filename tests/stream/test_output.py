"""AudioOutput on the real null sink: prebuffer gate, complete drain, underrun counting, Stop."""

import asyncio
import time

import numpy as np

from voicegui.stream.output import AudioOutput, OutputConfig
from voicegui.stream.ring import FloatRing

RATE = 24000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.25 * np.sin(2 * np.pi * 330 * t) + 0.01).astype(np.float32)


async def wait_for(event, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not event.is_set():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_gate_holds_until_threshold_then_drains_everything():
    ring, played = FloatRing(RATE * 2), FloatRing(RATE * 2)
    out = AudioOutput(ring, RATE, OutputConfig(), played=played)
    out.gate_frames = RATE // 2
    out.open()
    try:
        sig = tone(0.8)
        ring.write(sig[: RATE // 4])
        await asyncio.sleep(0.3)
        assert not out.playing and out.frames_played == 0  # below the gate: nothing handed on
        ring.write(sig[RATE // 4 :])
        out.ended = True
        await wait_for(out.finished)
    finally:
        out.close()
    got = np.zeros(played.available, dtype=np.float32)
    played.read_into(got)
    np.testing.assert_array_equal(got, sig)  # the whole clip, exactly, and nothing else
    assert out.underrun_episodes == 0
    assert out.first_sound_at is not None and out.play_started_at is not None


async def test_underrun_counted_once_per_episode_and_play_resumes():
    ring = FloatRing(RATE * 2)
    out = AudioOutput(ring, RATE, OutputConfig())
    out.open()
    try:
        sig = tone(0.2)
        for _ in range(3):
            ring.write(sig)
            await asyncio.sleep(0.6)  # long enough to run dry each time
        out.ended = True
        await wait_for(out.finished)
    finally:
        out.close()
    assert out.underrun_episodes >= 2
    assert out.underrun_frames > RATE * 0.3
    assert out.frames_played == 3 * len(sig)


async def test_stop_now_silences_at_once():
    ring = FloatRing(RATE * 5)
    out = AudioOutput(ring, RATE, OutputConfig())
    out.open()
    ring.write(tone(4.0))
    await asyncio.sleep(0.5)
    assert out.playing
    out.stop_now()
    assert not out.active
    after_stop = out.frames_played
    await asyncio.sleep(0.3)
    assert out.frames_played == after_stop  # the callback no longer runs once stop_now() has returned
    out.close()


async def test_stop_while_the_stream_is_starting_never_plays_and_never_races_start(monkeypatch):
    # open() runs in a worker thread; a Stop can come while PortAudio's start() is still running. Calling
    # abort() then, from another thread, once aborted the whole process; skipping it left a started stream.
    import threading

    import sounddevice as sd

    real_start, real_abort = sd.OutputStream.start, sd.OutputStream.abort
    in_start, release = threading.Event(), threading.Event()
    aborts_during_start: list[str] = []

    def slow_start(self):
        in_start.set()
        assert release.wait(10)
        real_start(self)
        in_start.clear()

    def watched_abort(self, *args, **kwargs):
        if in_start.is_set():
            aborts_during_start.append(threading.current_thread().name)
        return real_abort(self, *args, **kwargs)

    monkeypatch.setattr(sd.OutputStream, "start", slow_start)
    monkeypatch.setattr(sd.OutputStream, "abort", watched_abort)
    ring = FloatRing(RATE)
    ring.write(tone(0.5))
    out = AudioOutput(ring, RATE, OutputConfig())
    opening = asyncio.ensure_future(asyncio.to_thread(out.open))
    try:
        await asyncio.wait_for(asyncio.to_thread(in_start.wait, 10), 15)
        out.stop_now()  # must return at once, without touching the stream that is being started
        assert out.finished.is_set() and not aborts_during_start
        release.set()
        await asyncio.wait_for(opening, 15)
        assert not out.active, "the stream kept playing after Stop"
        await asyncio.sleep(0.2)
        assert out.frames_played == 0
    finally:
        release.set()
        out.close()


async def test_the_end_of_playback_is_announced_from_portaudios_thread():
    import threading

    ring = FloatRing(RATE)
    ring.write(tone(0.3))
    out = AudioOutput(ring, RATE, OutputConfig())
    calls: list[str] = []
    out.on_finished = lambda: calls.append(threading.current_thread().name)
    out.ended = True
    out.open()
    try:
        await wait_for(out.finished)
        assert len(calls) == 1 and calls[0] != threading.current_thread().name
        assert out.frames_played == int(0.3 * RATE)
    finally:
        out.close()


def test_portaudios_own_underflow_flags_are_counted():
    import sounddevice as sd

    out = AudioOutput(FloatRing(RATE), RATE, OutputConfig())
    out.ring.write(tone(0.1))
    outdata = np.zeros((256, 1), dtype=np.float32)
    flagged = sd.CallbackFlags()
    flagged.output_underflow = True
    out.render(outdata, 256, None, sd.CallbackFlags())
    out.render(outdata, 256, None, flagged)
    out.render(outdata, 256, None, flagged)
    assert out.device_underflows == 2


def test_no_prebuffer_still_waits_for_one_whole_callback():
    """Prebuffer 0 starts on the first samples, but not on fewer than the callback asks for: an mp3's first
    output after its encoder delay is trimmed is 47 samples at 24 kHz, and starting on them ran dry at once."""
    import sounddevice as sd

    out = AudioOutput(FloatRing(RATE), RATE, OutputConfig())
    out.gate_frames = 0
    sig = tone(0.1)
    outdata = np.ones((256, 1), dtype=np.float32)
    out.ring.write(sig[:47])
    out.render(outdata, 256, None, sd.CallbackFlags())
    assert not out.playing and not outdata.any()  # held: silence, not 47 samples and a gap
    assert out.underrun_episodes == 0 and out.frames_played == 0
    out.ring.write(sig[47:576])
    out.render(outdata, 256, None, sd.CallbackFlags())
    assert out.playing and out.frames_played == 256
    np.testing.assert_array_equal(outdata[:, 0], sig[:256])
    assert out.underrun_episodes == 0


def test_a_ring_smaller_than_one_callback_still_starts_once_full():
    """A block size above the max buffer (both are settings): waiting for a whole callback would wait forever,
    the full ring holding the fetch back."""
    import sounddevice as sd

    out = AudioOutput(FloatRing(100), RATE, OutputConfig())
    out.ring.write(tone(0.1))
    outdata = np.zeros((256, 1), dtype=np.float32)
    out.render(outdata, 256, None, sd.CallbackFlags())
    assert out.frames_played == 100  # it started (and, the ring being smaller than the callback, ran dry)


def test_a_clip_shorter_than_one_callback_still_plays_once_it_has_ended():
    import sounddevice as sd

    out = AudioOutput(FloatRing(RATE), RATE, OutputConfig())
    sig = tone(0.1)[:30]
    out.ring.write(sig)
    outdata = np.zeros((256, 1), dtype=np.float32)
    out.render(outdata, 256, None, sd.CallbackFlags())
    assert not out.playing
    out.ended = True
    out.render(outdata, 256, None, sd.CallbackFlags())
    assert out.frames_played == 30 and out.underrun_episodes == 0
    np.testing.assert_array_equal(outdata[:30, 0], sig)


async def play_on(keeper, rate: int, seconds: float = 0.1):
    from voicegui.stream.output import AudioOutput

    ring = FloatRing(rate)
    t = np.arange(int(seconds * rate)) / rate
    ring.write((0.25 * np.sin(2 * np.pi * 330 * t)).astype(np.float32))
    out = AudioOutput(ring, rate, OutputConfig())
    out.ended = True
    await asyncio.to_thread(keeper.acquire, out)
    await wait_for(out.finished)
    keeper.release(out)
    return out


async def test_a_keeper_reuses_its_stream_and_a_rate_change_reopens():
    from voicegui.stream.output import OutputKeeper

    keeper = OutputKeeper(idle_close_s=None)
    try:
        first = await play_on(keeper, RATE)
        stream = keeper.stream
        second = await play_on(keeper, RATE)
        assert keeper.opened == 1 and keeper.stream is stream and stream.running
        assert first.frames_played == second.frames_played == int(0.1 * RATE)
        third = await play_on(keeper, 48000)
        assert keeper.opened == 2 and keeper.stream is not stream and not stream.running
        assert third.frames_played == int(0.1 * 48000)
    finally:
        keeper.close()
    assert keeper.stream is None


async def test_an_idle_kept_stream_is_closed_after_the_idle_timeout():
    from voicegui.stream.output import OutputKeeper

    keeper = OutputKeeper(idle_close_s=0.2)
    try:
        await play_on(keeper, RATE)
        stream = keeper.stream
        assert stream is not None
        deadline = time.monotonic() + 10
        while keeper.stream is not None:
            assert time.monotonic() < deadline, "the idle stream was never closed"
            await asyncio.sleep(0.05)
        assert not stream.running
        await play_on(keeper, RATE)  # and the next utterance opens a new one
        assert keeper.opened == 2
    finally:
        keeper.close()


async def play_through(samples: np.ndarray, config: OutputConfig) -> AudioOutput:
    ring = FloatRing(RATE * 2)
    out = AudioOutput(ring, RATE, config)
    out.open()
    try:
        ring.write(samples)
        out.ended = True
        await wait_for(out.finished)
    finally:
        out.close()
    return out


async def test_codec_priming_is_not_first_sound():
    """A decoded mp3/aac stream starts with its encoder's priming: ~1,100 samples near 1e-6 that nobody hears.
    Counted as sound, it made those formats' TTFA ~45 ms earlier than the sound at the sink."""
    priming = np.full(1100, 2e-6, np.float32)
    silent = await play_through(np.concatenate([priming, np.zeros(RATE // 10, np.float32)]), OutputConfig())
    assert silent.frames_played > 1100 and silent.first_sound_at is None
    heard = await play_through(np.concatenate([priming, tone(0.1)]), OutputConfig())
    assert heard.first_sound_at is not None


async def test_first_sound_is_the_audio_not_the_volume_knob():
    quiet_knob = await play_through(tone(0.1), OutputConfig(volume=0.001))
    assert quiet_knob.first_sound_at is not None
