"""PrebufferPolicy: behaviour of the auto threshold for fast, real-time, slow and stuttering streams."""

import random

import pytest

from voicegui.stream.prebuffer import PrebufferPolicy

RATE = 24000


def feed(policy: PrebufferPolicy, chunk_s: float, interval_s: float, count: int, start: float = 0.0) -> float:
    t = start
    policy.on_headers(start)
    for _ in range(count):
        t += interval_s
        policy.on_arrival(t, chunk_s)
    return t


def test_fixed_value_is_used_as_is():
    policy = PrebufferPolicy(RATE, fixed_ms=250)
    feed(policy, 0.02, 0.01, 10)
    assert policy.threshold_s() == pytest.approx(0.25)
    assert policy.threshold_frames() == 6000


def test_before_any_arrival_the_prior_applies():
    assert PrebufferPolicy(RATE).threshold_s() == pytest.approx(0.1)


def test_fast_steady_stream_starts_within_a_few_packets():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    feed(policy, 0.0213, 0.0107, 2)  # 1 KB of pcm every 10.7 ms = 2x real time
    assert policy.rate_x == pytest.approx(2.0, rel=0.05)
    assert policy.threshold_s() <= 0.04  # two packets (42 ms) already cover it


def test_first_chunk_of_a_fast_compressed_stream_gives_a_rate_at_once():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    policy.on_headers(0.0)
    policy.on_arrival(0.064, 0.128)  # 1 KB of 64 kbit/s mp3 at 2x
    assert policy.rate_x == pytest.approx(2.0)
    assert policy.threshold_s() < 0.128


def test_real_time_stream_keeps_room_for_unseen_jitter():
    fast = PrebufferPolicy(RATE, expected_audio_s=3.0)
    feed(fast, 0.0213, 0.0107, 5)
    steady = PrebufferPolicy(RATE, expected_audio_s=3.0)
    feed(steady, 0.0213, 0.0213, 5)  # exactly real time
    assert steady.threshold_s() >= 0.15 > fast.threshold_s()


def test_slow_stream_waits_for_the_predicted_shortfall():
    policy = PrebufferPolicy(RATE, expected_audio_s=4.0)
    feed(policy, 0.0213, 0.0426, 10)  # 0.5x real time
    remaining = 4.0 - 10 * 0.0213
    assert policy.threshold_s() >= 0.5 * remaining


def test_long_gaps_raise_the_threshold():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    t = feed(policy, 0.0213, 0.0107, 5)
    before = policy.threshold_s()
    policy.on_arrival(t + 0.2, 0.0213)  # a 200 ms hole
    assert policy.threshold_s() >= 1.5 * 0.2 > before


def test_each_underrun_grows_the_threshold():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    feed(policy, 0.0213, 0.0107, 5)
    base = policy.threshold_s()
    policy.on_underrun()
    policy.on_underrun()
    assert policy.threshold_s() == pytest.approx(base + 0.3)


def test_a_burst_after_a_late_packet_is_not_taken_for_a_fast_stream():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    policy.on_headers(0.0)
    policy.on_arrival(0.110, 0.0213)  # first packet 90 ms late...
    for i in range(4):  # ...and the queued ones right behind it
        policy.on_arrival(0.111 + i * 0.001, 0.0213)
    # the five packets (106 ms) look like a 20x stream since the first one, but the wait for the first one
    # is a gap like any other: they do not start playback
    assert policy.threshold_s() >= 1.5 * 0.09 > 5 * 0.0213


def test_a_burst_after_a_late_packet_mid_stream_keeps_room_for_that_gap():
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    t = feed(policy, 0.0213, 0.0213, 10)  # real time...
    policy.on_arrival(t + 0.12, 0.0213)  # ...then one packet 100 ms late...
    for i in range(4):  # ...and the queued ones right behind it
        policy.on_arrival(t + 0.121 + i * 0.001, 0.0213)
    assert policy.threshold_s() >= 1.5 * 0.12


def test_fast_stream_whose_first_audio_comes_late_starts_within_three_packets():
    # mp3 at 2x: the ID3 tag, the Info frame and the encoder delay come first; then a 24 ms mp3 half-frame
    # every 10.5 ms. Measured from the headers it looks barely faster than real time (72 ms in 62 ms); the
    # slope since the first audio (unbiased by that offset) shows the 2x.
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    policy.on_headers(0.0)
    for t in (0.041, 0.0515, 0.062):
        policy.on_arrival(t, 0.024)
    assert policy.rate_x == pytest.approx(2.29, rel=0.05)
    assert policy.threshold_s() <= 3 * 0.024


def test_fast_stream_of_long_frames_starts_at_the_second_frame():
    # flac at 2x: a 96 ms frame is only complete when the next frame's header has arrived
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    policy.on_headers(0.0)
    policy.on_arrival(0.096, 0.096)
    assert policy.threshold_s() > 0.096  # one frame in 96 ms: could be a real-time stream
    policy.on_arrival(0.148, 0.096)
    assert policy.threshold_s() <= 2 * 0.096


def test_two_close_packets_of_a_real_time_stream_are_not_taken_for_a_fast_stream():
    # at 1x, two packets 5 ms apart (the first one a little late) give a 4x slope, but the stream is not
    # ahead of real time since the headers: no fast start on two points
    policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
    policy.on_headers(0.0)
    policy.on_arrival(0.040, 0.0213)
    policy.on_arrival(0.045, 0.0213)
    assert policy.threshold_s() > 2 * 0.0213


def jittery(seed: int, chunk_s: float, count: int, jitter_s: float = 0.1, rate_x: float = 1.0):
    """Arrival times like the built-in server's shaping: each write at its schedule + U[0, jitter], in order."""
    rnd = random.Random(seed)
    last, out = 0.0, []
    for k in range(count):
        last = max(last, (k + 1) * chunk_s / rate_x + rnd.uniform(0, jitter_s)) + 0.0003
        out.append(last)
    return out


def start_and_underrun(policy: PrebufferPolicy, times: list[float], chunk_s: float) -> tuple[float | None, bool]:
    """Play from the first arrival at which the buffer reaches the threshold; does the buffer ever run dry?"""
    policy.on_headers(0.0)
    start, received = None, 0.0
    for t in times:
        if start is not None and t - start > received:
            return start, True
        policy.on_arrival(t, chunk_s)
        received += chunk_s
        if start is None and received >= policy.threshold_s():
            start = t
    return start, False


@pytest.mark.parametrize("chunk_s", [0.0213, 0.0427, 0.096])  # pcm 1 KB, an aac frame, a flac frame
def test_real_time_stream_with_jitter_starts_without_waiting_for_a_shortfall_and_never_runs_dry(chunk_s):
    starts = []
    for seed in range(40):
        policy = PrebufferPolicy(RATE, expected_audio_s=3.0)
        start, underrun = start_and_underrun(policy, jittery(seed, chunk_s, int(3.0 / chunk_s)), chunk_s)
        assert not underrun, f"seed {seed}"
        starts.append(start)
    starts.sort()
    # the start needs the jitter (100 ms) plus a chunk, and no more than that much again: a noisy rate
    # estimate just under 1x must not add a shortfall over the whole remaining clip
    assert 0.1 + chunk_s <= starts[len(starts) // 2] <= 2 * (0.1 + chunk_s) + 0.1


def test_dead_band_just_below_real_time_but_a_slower_stream_waits_for_its_shortfall():
    near = PrebufferPolicy(RATE, expected_audio_s=10.0)
    feed(near, 0.0213, 0.0213 / 0.95, 20)  # 0.95x: measurement noise territory
    slow = PrebufferPolicy(RATE, expected_audio_s=10.0)
    feed(slow, 0.0213, 0.0213 / 0.8, 20)  # 0.8x: a real shortfall
    remaining = 10.0 - 20 * 0.0213
    assert near.threshold_s() < 0.3
    assert slow.threshold_s() >= 0.2 * remaining
