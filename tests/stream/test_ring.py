"""FloatRing: wrap-around, partial writes when full, order preserved, producer/consumer on two threads."""

import threading

import numpy as np
from hypothesis import given, settings, strategies as st

from voicegui.stream.ring import FloatRing


def test_partial_write_when_full_and_wraparound():
    ring = FloatRing(5)
    assert ring.write(np.arange(3, dtype=np.float32)) == 3
    out = np.zeros(2, dtype=np.float32)
    assert ring.read_into(out) == 2
    assert out.tolist() == [0, 1]
    # 1 buffered, 4 free: only 4 of 6 fit, and they wrap past the end of the storage.
    assert ring.write(np.arange(10, 16, dtype=np.float32)) == 4
    assert ring.space == 0
    out = np.zeros(8, dtype=np.float32)
    assert ring.read_into(out) == 5
    assert out[:5].tolist() == [2, 10, 11, 12, 13]
    assert ring.available == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=60), st.integers(1, 32))
def test_any_interleaving_preserves_the_sequence(ops, capacity):
    ring = FloatRing(capacity)
    produced = np.arange(2000, dtype=np.float32)
    pos = 0
    consumed = []
    for w, r in ops:
        pos += ring.write(produced[pos : pos + w])
        out = np.zeros(r, dtype=np.float32)
        n = ring.read_into(out)
        consumed.extend(out[:n].tolist())
        assert 0 <= ring.available <= capacity
    assert consumed == produced[: len(consumed)].tolist()
    assert len(consumed) + ring.available == pos


def test_two_threads_lose_nothing():
    ring = FloatRing(257)
    data = np.random.default_rng(1).standard_normal(50_000).astype(np.float32)
    got = np.zeros_like(data)
    done = threading.Event()

    def consume():
        pos = 0
        while pos < len(data):
            pos += ring.read_into(got[pos : pos + 100])
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    pos = 0
    while pos < len(data):
        pos += ring.write(data[pos : pos + 333])
    assert done.wait(30)
    t.join()
    np.testing.assert_array_equal(got, data)
