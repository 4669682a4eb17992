"""Fuzzing every decoder: random bytes, mutated real streams, headers followed by junk, cross-format splices.

What each example must satisfy (checked by `bounded_decode`):
* no exception other than DecodeError (whose text is one line), no crash of the process;
* no hang: every feed()/flush() call returns within CALL_CAP_S and the whole example within EXAMPLE_CAP_S
  (wall clock, generous for a shared 2-core machine; a hang would be minutes);
* output is float32 mono in [-1, 1] with no NaN.
Memory: a 1 MB stream of junk behind each container's header is decoded under tracemalloc, peak below a cap.

The corpus (tests/decode/fuzz_corpus/*.bin, named FORMAT-what.bin, FORMAT may be "any") is replayed as regression
tests: seeds that reach deep parser states plus anything that ever failed. A failing fuzz example is saved to
the corpus automatically (tests/decode/fuzz_corpus/failed-FORMAT-HASH.bin, at most a few per run) so it can be
kept once fixed.

Inputs per run (max_examples below; VOICEGUI_FUZZ_SCALE multiplies them): 6 x 1000 random + 6 x 600 mutated
+ 6 x 300 header-then-junk + 400 splices + 200 bit-flip storms = 12,000 hypothesis examples, plus the corpus
files (each fed three ways, to every format for "any-" files) and 12 one-megabyte memory runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

try:
    from . import audio_samples as samples
except ImportError:
    sys.path.insert(0, os.path.dirname(__file__))
    import audio_samples as samples

from voicegui.decode.stream_decoder import DecodeError, create_decoder

FORMATS = ["pcm", "wav", "mp3", "aac", "flac", "opus"]
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
CALL_CAP_S = 2.0
EXAMPLE_CAP_S = 5.0
HANG_S = 20.0  # far over EXAMPLE_CAP_S: only a call that never returns reaches it
MEMORY_CAP_BYTES = 8 * 1024 * 1024
_MAX_SAVED_PER_RUN = 5
_saved = 0

FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            derandomize=False)
# VOICEGUI_FUZZ_SCALE=10 runs ten times as many examples (a longer hunt; failures land in the corpus).
SCALE = max(1, int(os.environ.get("VOICEGUI_FUZZ_SCALE", "1")))

# numpy's overflow/invalid warnings would reach the user's terminal: in a decoder they are bugs.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def n(examples: int) -> int:
    return examples * SCALE


def _save_failure(fmt: str, data: bytes) -> None:
    """Keep a failing input in the corpus (deduplicated by content) so it becomes a regression test."""
    global _saved
    if _saved >= _MAX_SAVED_PER_RUN or os.environ.get("VOICEGUI_FUZZ_NO_SAVE"):
        return
    name = f"failed-{fmt}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path = CORPUS / name
    if not path.exists():
        try:
            path.write_bytes(data)
            _saved += 1
        except OSError:
            pass  # a read-only checkout: the failure is still reported by the assertion


def _split(data: bytes, cuts) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@contextlib.contextmanager
def hang_stopped(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in the test if the body runs `seconds` without returning: a decoder loop that never
    ends (a lone mp3 header after an ID3 tag once did) must fail its example, not hang the suite. The checks
    after each call cannot see a call that never returns, and pytest-timeout's one alarm fires only once, while
    Hypothesis replays a failing example again and again. Python code only: a hang inside FFmpeg's C code is
    not interrupted by a signal handler. pytest-timeout's own alarm is put back with what is left of it."""
    def stop(signum: int, frame: object) -> None:
        raise TimeoutError(f"one example ran {seconds:g} s without returning: a hang")

    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, stop)
    outer, _interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, outer - (time.monotonic() - started)))


def bounded_decode(fmt: str, data: bytes, cuts=(), save: bool = True) -> int:
    """Decode `data` split at `cuts`; assert the fuzz contract; return the number of samples decoded."""
    with hang_stopped(HANG_S):
        return _bounded_decode(fmt, data, cuts, save)


def _bounded_decode(fmt: str, data: bytes, cuts=(), save: bool = True) -> int:
    started = time.monotonic()
    total = 0
    trace = os.environ.get("VOICEGUI_FUZZ_TRACE")
    if trace:
        # A crash of the whole process (a segfault inside FFmpeg) skips every except: this file keeps the input.
        Path(trace).write_bytes(fmt.encode().ljust(8) + repr(sorted(cuts)).encode().ljust(4096)[:4096] + data)
    try:
        dec = create_decoder(fmt)
        try:
            for chunk in _split(data, cuts):
                t0 = time.monotonic()
                got = dec.feed(chunk)
                assert time.monotonic() - t0 < CALL_CAP_S, f"feed() of {len(chunk)} bytes took too long"
                _check_samples(got)
                total += len(got)
            t0 = time.monotonic()
            got = dec.flush()
            assert time.monotonic() - t0 < CALL_CAP_S, "flush() took too long"
            _check_samples(got)
            total += len(got)
        except DecodeError as exc:
            text = str(exc)
            assert text and "\n" not in text, repr(text)
        assert time.monotonic() - started < EXAMPLE_CAP_S, "one example took too long"
    except BaseException:
        if save:
            _save_failure(fmt, data)
        raise
    return total


def _check_samples(got: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.ndim == 1
    if len(got):
        assert np.isfinite(got).all() and float(np.max(np.abs(got))) <= 1.0


def _real(fmt: str) -> bytes:
    return samples.encoded(fmt)


# --- random bytes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=n(1000), **FUZZ)
@given(data=st.binary(max_size=4096), cuts=st.lists(st.integers(0, 4096), max_size=10))
def test_random_bytes(fmt, data, cuts):
    bounded_decode(fmt, data, cuts)


# --- mutated real streams -------------------------------------------------------------------------------------

_mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), st.integers(0), st.integers(1, 512)),
    st.tuples(st.just("repeat"), st.integers(0), st.integers(1, 2048)),
    st.tuples(st.just("zero"), st.integers(0), st.integers(1, 4096)),
)


def mutate(data: bytes, ops) -> bytes:
    buf = bytearray(data)
    for op, pos, arg in ops:
        if not buf and op != "insert":
            continue
        i = pos % (len(buf) + 1) if op == "insert" else pos % len(buf)
        if op == "set":
            buf[i] = arg
        elif op == "flip":
            buf[i] ^= 1 << arg
        elif op == "insert":
            buf[i:i] = arg
        elif op == "delete":
            del buf[i:i + arg]
        elif op == "repeat":
            buf[i:i] = buf[i:i + arg]
        elif op == "zero":
            buf[i:i + arg] = bytes(len(buf[i:i + arg]))
    return bytes(buf)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=n(600), **FUZZ)
@given(ops=st.lists(_mutation, min_size=1, max_size=12), keep=st.integers(64, 30000),
       cuts=st.lists(st.integers(0, 30000), max_size=10))
def test_mutated_real_stream(fmt, ops, keep, cuts):
    # Mutations land mostly in the first bytes kept: headers, where the parsers' interesting states are.
    data = mutate(_real(fmt)[:keep], ops)
    bounded_decode(fmt, data, cuts)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=n(300), **FUZZ)
@given(head=st.integers(4, 400), junk=st.binary(min_size=1, max_size=8192),
       cuts=st.lists(st.integers(0, 9000), max_size=6))
def test_header_then_random_junk(fmt, head, junk, cuts):
    bounded_decode(fmt, _real(fmt)[:head] + junk, cuts)


@settings(max_examples=n(400), **FUZZ)
@given(asked=st.sampled_from(FORMATS), a=st.sampled_from(FORMATS), b=st.sampled_from(FORMATS),
       at=st.integers(0, 20000), length=st.integers(0, 20000), cuts=st.lists(st.integers(0, 40000), max_size=6))
def test_cross_format_splice(asked, a, b, at, length, cuts):
    """A stream that switches container mid-way (a proxy gluing two responses, a server bug)."""
    first = _real(a)
    data = first[:at % (len(first) + 1)] + _real(b)[:length]
    bounded_decode(asked, data, cuts)


@settings(max_examples=n(200), **FUZZ)
@given(fmt=st.sampled_from(FORMATS), seed=st.integers(0, 2**32 - 1), rate=st.sampled_from([1e-4, 1e-3, 1e-2]))
def test_bit_flip_storm_over_the_whole_stream(fmt, seed, rate):
    data = np.frombuffer(_real(fmt), dtype=np.uint8).copy()
    rng = np.random.default_rng(seed)
    hits = rng.random(len(data)) < rate
    data[hits] ^= rng.integers(1, 256, int(hits.sum()), dtype=np.uint8)
    bounded_decode(fmt, data.tobytes(), range(0, len(data), 997))


# --- memory ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("head_bytes", [0, 300])
def test_one_megabyte_of_junk_keeps_memory_bounded(fmt, head_bytes):
    """1 MB of random bytes (behind the container's real header, or alone) fed in 4 KB pieces, outputs dropped:
    the decoder's Python-visible peak stays below MEMORY_CAP_BYTES (FFmpeg's own buffers are outside
    tracemalloc; they are bounded by one frame, see decode.py)."""
    junk = np.random.default_rng(11).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    data = _real(fmt)[:head_bytes] + junk
    create_decoder(fmt).feed(b"")  # imports and codec tables loaded outside the measurement
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        dec = create_decoder(fmt)
        t0 = time.monotonic()
        try:
            for i in range(0, len(data), 4096):
                dec.feed(data[i:i + 4096])
            dec.flush()
        except DecodeError:
            pass
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_CAP_BYTES, f"{fmt}: peak {peak / 1e6:.1f} MB"
    assert time.monotonic() - t0 < 30  # no pathological slowness either (generous: tracemalloc is slow)


# --- the corpus --------------------------------------------------------------------------------------------------


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.bin"))


@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_replays(path):
    """Every corpus input, fed whole, one piece per 997 bytes, and 7 bytes at a time, to its format (or all)."""
    fmt = path.name.split("-", 2)[1] if path.name.startswith("failed-") else path.name.split("-", 1)[0]
    data = path.read_bytes()
    for f in FORMATS if fmt == "any" else [fmt]:
        for cuts in ((), range(0, len(data), 997), range(0, min(len(data), 4000), 7)):
            bounded_decode(f, data, cuts, save=False)


def test_corpus_has_seeds():
    names = {p.name.split("-", 1)[0] for p in _corpus_files()}
    assert {"wav", "mp3", "aac", "flac", "opus", "any"} <= names
