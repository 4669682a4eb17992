"""PrebufferPolicy: behaviour of the auto threshold for fast, real-time, slow and stuttering streams."""

import pytest

from voicegui.core.prebuffer import PrebufferPolicy

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
    assert policy.rate_x < 1.5
    assert policy.threshold_s() >= 0.05
