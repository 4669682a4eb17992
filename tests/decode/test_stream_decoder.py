"""Tests for voicegui.decode.stream_decoder: split invariance, exactness, progressiveness, errors, fuzz.

Inputs come from audio_samples.py (a deterministic speech-like 2 s 24 kHz signal encoded whole with PyAV).
"""

from __future__ import annotations

import io
import itertools
import os
import struct
import sys

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

try:
    from . import audio_samples as samples
except ImportError:  # tests/decode collected as plain directory (no package): import the builder next to us
    sys.path.insert(0, os.path.dirname(__file__))
    import audio_samples as samples

from voicegui.decode.stream_decoder import DecodeError, StreamDecoder, create_decoder

FORMATS = ["pcm", "wav", "mp3", "aac", "flac", "opus"]
LOSSY = ["mp3", "aac", "opus"]
EXACT = ["pcm", "wav", "flac"]
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_chunks(fmt: str, chunks, output_rate: int | None = None) -> tuple[np.ndarray, StreamDecoder, int | None]:
    """Feed chunks; returns (all samples, decoder, byte offset at which the first samples came out)."""
    dec = create_decoder(fmt, output_rate)
    out = []
    first = None
    pos = 0
    for chunk in chunks:
        pos += len(chunk)
        got = dec.feed(chunk)
        assert got.dtype == np.float32 and got.ndim == 1
        if len(got):
            assert dec.sample_rate is not None
            if first is None:
                first = pos
        out.append(got)
    out.append(dec.flush())
    return np.concatenate(out), dec, first


def split_at(data: bytes, cuts) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def one_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


_whole_cache: dict[str, np.ndarray] = {}


def whole(fmt: str) -> np.ndarray:
    if fmt not in _whole_cache:
        _whole_cache[fmt] = decode_chunks(fmt, [samples.encoded(fmt)])[0]
    return _whole_cache[fmt]


def original() -> np.ndarray:
    return samples.signal().astype(np.float32) / np.float32(32768.0)


def aligned_correlation(x: np.ndarray, ref: np.ndarray, max_lag: int = 4000) -> tuple[float, int]:
    """Best Pearson correlation of x against ref over lags in [-max_lag, max_lag]; (corr, lag)."""
    n = len(x) + len(ref)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(x, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.r_[np.arange(0, max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(xc[lags])])
    a, b = (x[lag:], ref) if lag >= 0 else (x, ref[-lag:])
    m = min(len(a), len(b))
    return float(np.corrcoef(a[:m], b[:m])[0, 1]), lag


# --- splits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_byte_at_a_time_equals_whole(fmt):
    got, dec, _ = decode_chunks(fmt, one_byte(samples.encoded(fmt)))
    assert np.array_equal(got, whole(fmt))
    assert dec.detected_format == fmt and dec.format_mismatch is None and not dec.truncated


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=40))
def test_random_splits_equal_whole(fmt, cuts):
    data = samples.encoded(fmt)
    got, _, _ = decode_chunks(fmt, split_at(data, cuts))
    assert np.array_equal(got, whole(fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_resampled_output_is_split_invariant(fmt):
    data = samples.encoded(fmt)
    a, dec, _ = decode_chunks(fmt, [data], output_rate=48000)
    b, _, _ = decode_chunks(fmt, split_at(data, range(0, len(data), 333)), output_rate=48000)
    assert dec.sample_rate == 48000
    assert np.array_equal(a, b)
    assert abs(len(a) - 2 * len(whole(fmt))) <= 64
    assert np.all(np.abs(a) <= 1.0)


# --- fidelity -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,data",
    [
        ("pcm", samples.encoded("pcm")),
        ("wav", samples.encoded("wav")),  # PyAV's wav carries a LIST chunk before 'data'
        ("wav", samples.streamed_wav()),  # sizes 0xFFFFFFFF as streamed
        ("wav", samples.wav_with_list_chunk()),
        ("flac", samples.encoded("flac")),
    ],
)
def test_lossless_is_sample_exact(name, data):
    got, dec, _ = decode_chunks(name, split_at(data, [1, 2, 3, 45, 47, 1001]))
    assert dec.sample_rate == 24000
    assert got.dtype == np.float32
    assert np.array_equal(got, original())


def test_wav_stereo_is_downmixed_and_24_bit_is_exact():
    sig = samples.signal()
    stereo = np.stack([sig, sig], axis=1).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 24000, 24000 * 4, 4, 16)
    header += b"data" + struct.pack("<I", 0xFFFFFFFF)
    got, _, _ = decode_chunks("wav", split_at(header + stereo, [5, 50, 777]))
    assert np.array_equal(got, original())
    # 24-bit: the s16 value shifted up 8 bits must give the same floats
    s24 = b"".join((int(v) << 8).to_bytes(3, "little", signed=True) for v in sig[:2000])
    header = b"RIFF" + struct.pack("<I", 0) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 24000, 24000 * 3, 3, 24)
    header += b"data" + struct.pack("<I", 0)
    got, _, _ = decode_chunks("wav", split_at(header + s24, [45, 46, 100]))
    assert np.array_equal(got, original()[:2000])


@pytest.mark.parametrize("fmt", LOSSY)
def test_lossy_matches_reference_decode(fmt):
    got = whole(fmt)
    ref, ref_rate = samples.reference_decode(fmt)
    if ref_rate != 24000:  # the container path decodes opus at 48 kHz
        ref = ref[::2]
    corr, _lag = aligned_correlation(got, ref)
    assert corr >= 0.99
    corr_orig, _ = aligned_correlation(got, original())
    assert corr_orig >= 0.95
    assert np.all(np.abs(got) <= 1.0)


def test_mp3_skips_info_frame_encoder_delay_and_end_padding_like_ffmpeg():
    # FFmpeg's mp3 demuxer drops the Xing/Info frame, the LAME encoder delay and the end padding; so do we
    ref, _ = samples.reference_decode("mp3")
    got = whole("mp3")
    np.testing.assert_array_equal(got, ref)
    assert len(got) == len(original())


def test_aac_is_identical_to_reference_decode():
    # ADTS carries no gapless info, so the container path and ours decode the very same packets
    ref, _ = samples.reference_decode("aac")
    assert np.array_equal(whole("aac"), ref)


def test_opus_trims_preskip_and_end_padding():
    got = whole("opus")
    assert abs(len(got) - len(original())) <= 480  # within one 20 ms frame at 24 kHz
    corr, lag = aligned_correlation(got, original(), max_lag=200)
    assert corr >= 0.99 and abs(lag) <= 24  # pre-skip removed: no extra delay


def test_opus_reports_the_preskip_it_drops_as_stream_time():
    data = samples.encoded("opus")
    head = data.index(b"OpusHead")
    preskip = struct.unpack_from("<H", data, head + 10)[0]
    assert preskip > 0
    dec = StreamDecoder("opus")
    for i in range(0, len(data), 100):
        if len(dec.feed(data[i : i + 100])):
            break
    assert dec.codec_delay_s == pytest.approx(preskip / 48000)  # OpusHead's pre-skip is at 48 kHz


# --- progressiveness ----------------------------------------------------------------------------------------


def _ogg_first_audio_page_end(data: bytes) -> int:
    """End offset of the page that completes the third packet (OpusHead, OpusTags, first audio)."""
    pos, packets = 0, 0
    while pos < len(data):
        nseg = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + nseg]
        end = pos + 27 + nseg + sum(lacing)
        packets += sum(1 for v in lacing if v < 255)
        if packets >= 3:
            return end
        pos = end
    raise AssertionError("no audio packet")


def _flac_first_frame_end(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as c:
        first = next(p for p in c.demux(c.streams.audio[0]) if p.size)
        size = first.size
    pos = 4
    while True:  # metadata blocks
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 4 + length
        if last:
            return pos + size


def _frame_ends(data: bytes, start: int, count: int, kind: str) -> int:
    from voicegui.decode.mpeg_frames import (
        adts_frame_len as _adts_frame_len,
        mpeg_audio_frame_len as _mpeg_audio_frame_len,
    )

    pos = start
    for _ in range(count):
        n = _adts_frame_len(data[pos : pos + 7]) if kind == "aac" else _mpeg_audio_frame_len(data[pos : pos + 4])
        assert n
        pos += n
    return pos


def test_first_audio_offsets():
    offsets = {}
    for fmt in FORMATS:
        _, _, offsets[fmt] = decode_chunks(fmt, one_byte(samples.encoded(fmt)))
    _, _, streamed = decode_chunks("wav", one_byte(samples.streamed_wav()[:2000]))
    mp3 = samples.encoded("mp3")
    id3 = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(mp3[6:10]))
    limits = {
        "pcm": 2,
        "wav": 80,  # PyAV writes a 78-byte header (LIST chunk)
        # its last byte closes the frame's CRC-16: no need to wait for the next frame's header
        "flac": _flac_first_frame_end(samples.encoded("flac")),
        "opus": _ogg_first_audio_page_end(samples.encoded("opus")),
        # after the ID3 tag: the Xing/Info frame, then 2 frames; the encoder-delay samples we trim (as FFmpeg's
        # demuxer does) are priming silence, so the first real audio is not later for it
        "mp3": _frame_ends(mp3, id3, 3, "mp3"),
        "aac": _frame_ends(samples.encoded("aac"), 0, 2, "aac"),
    }
    for fmt in FORMATS:
        assert offsets[fmt] is not None and offsets[fmt] <= limits[fmt], (fmt, offsets[fmt], limits[fmt])
    assert streamed <= 46


def _flac_frames(data: bytes) -> tuple[int, list[bytes]]:
    """(offset of the first frame, each frame's bytes) of a whole FLAC file."""
    pos = 4
    while True:  # metadata blocks
        last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1 : pos + 4], "big")
        pos += 4 + length
        if last:
            break
    with av.open(io.BytesIO(data)) as c:
        frames = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
    assert len(b"".join(frames)) == len(data) - pos
    return pos, frames


def _decode_whole(fmt: str, *parts: bytes) -> tuple[list[np.ndarray], np.ndarray]:
    dec = create_decoder(fmt)
    outs = [dec.feed(p) for p in parts]
    return outs, np.concatenate(outs + [dec.flush()])


def test_flac_frame_comes_out_when_its_own_bytes_are_in():
    data = samples.encoded("flac")
    start, frames = _flac_frames(data)
    outs, _ = _decode_whole("flac", data[:start], *frames)
    assert len(outs[0]) == 0
    # each frame decodes as soon as its last byte is in, not one frame later when the next header comes
    assert all(len(out) > 0 for out in outs[1:])


def test_flac_chance_crc_match_inside_a_frame_does_not_cut_it():
    from voicegui.decode.flac_frames import crc16_update
    from voicegui.server.encode import StreamingEncoder

    # A frame's CRC-16 closes by chance at ~1 in 65536 of its prefixes; find one in noisy (large) frames.
    noise = (np.random.default_rng(3).standard_normal(samples.RATE * 20) * 0.3).clip(-1, 1).astype(np.float32)
    enc = StreamingEncoder("flac", samples.RATE)
    data = enc.encode(noise) + enc.finish()
    start, frames = _flac_frames(data)
    _, expected = _decode_whole("flac", data)
    pos = start
    for frame in frames:
        crc = 0
        for i, byte in enumerate(frame[:-2]):
            crc = crc16_update(crc, (byte,))
            if crc == 0 and i > 16:
                cut = pos + i + 1
                (before, _), got = _decode_whole("flac", data[:cut], data[cut:])
                np.testing.assert_array_equal(got, expected)
                assert len(before) == sum(len(f) for f in _decode_whole("flac", data[:pos])[0])
                return
        pos += len(frame)
    raise AssertionError("no chance CRC-16 match inside any frame: search a longer signal")


# --- errors -------------------------------------------------------------------------------------------------

GARBAGE = bytes(np.random.default_rng(7).integers(0, 256, 20000, dtype=np.uint8).tolist()).replace(b"\xff", b"\x00")


@pytest.mark.parametrize("fmt", ["wav", "mp3", "aac", "flac", "opus"])
def test_garbage_raises(fmt):
    dec = create_decoder(fmt)
    with pytest.raises(DecodeError):
        for chunk in split_at(GARBAGE, range(0, len(GARBAGE), 1000)):
            dec.feed(chunk)
        dec.flush()


@pytest.mark.parametrize("fmt", ["mp3", "aac", "flac", "opus"])
def test_container_header_then_garbage_raises(fmt):
    head = samples.encoded(fmt)[:200 if fmt != "flac" else 8300]
    dec = create_decoder(fmt)
    with pytest.raises(DecodeError):
        for chunk in split_at(head + GARBAGE * 5, range(0, 120000, 4096)):
            dec.feed(chunk)
        dec.flush()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "body,word",
    [
        (b'{"error": {"message": "Invalid voice \'bob\'", "type": "invalid_request_error"}}', "JSON"),
        (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "HTML"),
    ],
)
def test_text_body_raises_with_snippet(fmt, body, word):
    dec = create_decoder(fmt)
    with pytest.raises(DecodeError) as info:
        for i in range(0, len(body), 10):
            dec.feed(body[i : i + 10])
        dec.flush()
    message = str(info.value)
    assert word in message and ("Invalid voice" in message or "502 Bad Gateway" in message)
    assert "\n" not in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_stream_raises(fmt):
    dec = create_decoder(fmt)
    assert len(dec.feed(b"")) == 0
    with pytest.raises(DecodeError, match="no audio"):
        dec.flush()


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_stream_plays_up_to_the_cut(fmt):
    data = samples.encoded(fmt)
    cut = len(data) // 2 + 3  # odd: inside a sample for pcm, inside a frame/page for the others
    got, dec, _ = decode_chunks(fmt, split_at(data[:cut], [100, 1000]))
    assert dec.truncated
    full = whole(fmt)
    assert 0.35 * len(full) <= len(got) <= 0.65 * len(full)
    if fmt in EXACT:
        assert np.array_equal(got, full[: len(got)])


@pytest.mark.parametrize("requested,sent", [("opus", "mp3"), ("mp3", "aac"), ("aac", "mp3"), ("wav", "flac"),
                                            ("pcm", "wav"), ("pcm", "mp3"), ("flac", "opus"), ("mp3", "wav")])
def test_wrong_container_is_decoded_and_reported(requested, sent):
    got, dec, _ = decode_chunks(requested, split_at(samples.encoded(sent), [3, 9, 500]))
    assert dec.detected_format == sent
    assert dec.format_mismatch == f"asked for {requested}, the server sent {sent}; playing it anyway"
    assert np.array_equal(got, whole(sent))


def test_pcm_that_starts_like_a_frame_sync_stays_pcm():
    sig = samples.signal().copy()
    sig[0] = np.frombuffer(b"\xff\xf3", dtype="<i2")[0]  # looks like an mp3 header
    sig[1] = np.frombuffer(b"\xff\xf1", dtype="<i2")[0]
    got, dec, first = decode_chunks("pcm", one_byte(sig.astype("<i2").tobytes()))
    assert dec.detected_format == "pcm"
    assert np.array_equal(got, sig.astype(np.float32) / 32768)


def test_feed_after_flush_is_an_error():
    dec = create_decoder("pcm")
    dec.feed(b"\x00\x01")
    dec.flush()
    with pytest.raises(RuntimeError):
        dec.feed(b"\x00\x00")


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError):
        create_decoder("ogg-vorbis")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(FORMATS),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
)
def test_fuzz_random_bytes_only_raise_decode_error(fmt, data, cuts):
    _feed_expecting_only_decode_error(fmt, data, cuts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(FORMATS),
    sent=st.sampled_from(FORMATS),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=20),
    length=st.integers(min_value=0, max_value=20000),
    cuts=st.lists(st.integers(min_value=0, max_value=20000), max_size=8),
)
def test_fuzz_corrupted_streams_only_raise_decode_error(fmt, sent, flips, length, cuts):
    data = bytearray(samples.encoded(sent)[:length])
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    _feed_expecting_only_decode_error(fmt, bytes(data), cuts)


def _feed_expecting_only_decode_error(fmt: str, data: bytes, cuts) -> None:
    dec = create_decoder(fmt)
    try:
        for chunk in split_at(data, cuts):
            got = dec.feed(chunk)
            assert got.dtype == np.float32 and got.ndim == 1 and np.all(np.abs(got) <= 1.0)
        got = dec.flush()
        assert np.all(np.abs(got) <= 1.0)
    except DecodeError as exc:
        assert str(exc) and "\n" not in str(exc)
