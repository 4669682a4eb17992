"""Our mp3 decoder trims the encoder delay a LAME Info frame states, as FFmpeg does: the built-in server's stream
(its Info frame has the delay and no frame count), files from the lame binary (delay, padding, frame count; also
with CRC protection), and tags whose frame count is stale or corrupt (FFmpeg's window: what lies past the frames
counted still plays). The reference is FFmpeg's demuxer on the bytes (PyAV's av.open: a seekable file) and the
ffmpeg binary reading a pipe."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tests.decode import audio_samples as samples
from tests.decode.gapless import ffmpeg_decode, id3_len, lag, lame_encode, needs_ffmpeg, needs_lame
from tests.decode.test_segments import FEEDS, decode
from tests.server import clip
from voicegui.decode.stream_decoder import StreamDecoder
from voicegui.server.encode import StreamingEncoder

SR = 24000


def server_mp3(x: np.ndarray) -> bytes:
    enc = StreamingEncoder("mp3", SR)
    return b"".join(enc.encode(x[i : i + 480]) for i in range(0, len(x), 480)) + enc.finish()


@pytest.mark.parametrize("how", FEEDS)
def test_the_servers_mp3_starts_at_the_clips_first_sample(how):
    x = clip.speech_like(1.0)
    data = server_mp3(x)
    got, dec = decode("mp3", data, how)
    assert lag(x, got) == 0  # was 1,105: LAME's delay and the decoder's, heard as ~46 ms of silence
    np.testing.assert_array_equal(got, samples.container_decode(data)[0])
    assert 0 <= len(got) - len(x) < 576 + 288  # the end padding is unknown when the stream starts: it stays
    assert dec.segments == 1 and not dec.truncated


def first_output(dec: StreamDecoder, data: bytes, piece: int = 64) -> np.ndarray:
    for i in range(0, len(data), piece):
        got = dec.feed(data[i : i + piece])
        if len(got):
            return got
    raise AssertionError("no audio")


def test_the_delay_it_drops_is_reported_as_stream_time_by_the_first_output():
    """The prebuffer policy counts it as delivered (PrebufferPolicy.on_codec_delay): the first two frames of
    the server's stream decode to 47 samples, and they stand for 48 ms of the stream."""
    dec = StreamDecoder("mp3")
    assert dec.codec_delay_s == 0.0
    got = first_output(dec, server_mp3(clip.speech_like(1.0)))
    assert dec.codec_delay_s == pytest.approx((576 + 529) / SR)  # LAME's delay (its Info frame) + the decoder's
    assert len(got) == 2 * 576 - 576 - 529


@needs_lame
def test_a_lame_files_dropped_delay_is_reported_too(tmp_path):
    data = lame_encode(clip.write_wav(tmp_path / "clip.wav", 1.0), tmp_path / "clip.mp3", "-b", "64")
    dec = StreamDecoder("mp3")
    first_output(dec, data)
    assert dec.codec_delay_s == pytest.approx((576 + 529) / SR)


def test_an_mp3_without_a_tag_and_other_formats_drop_nothing():
    x = clip.speech_like(0.5)
    untagged = samples.encode("mp3", (x * 32767).astype(np.int16), SR, options={"write_xing": "0"})
    for fmt, data in (("mp3", untagged), ("pcm", samples.pcm_bytes()), ("flac", samples.encoded("flac")),
                      ("aac", samples.encoded("aac")), ("wav", samples.encoded("wav"))):
        dec = StreamDecoder(fmt)
        first_output(dec, data)
        assert dec.codec_delay_s == 0.0, fmt


@needs_ffmpeg
def test_the_servers_mp3_decodes_like_ffmpeg_reading_a_pipe():
    data = server_mp3(clip.speech_like(1.0))
    got, _ = decode("mp3", data, "chunks")
    theirs = ffmpeg_decode(data)
    assert len(got) == len(theirs)
    assert float(np.max(np.abs(got - theirs))) <= 1.5 / 32768  # theirs is rounded to 16 bits


@needs_lame
@pytest.mark.parametrize("crc", [False, True], ids=["plain", "crc-protected"])
def test_a_lame_file_is_trimmed_like_ffmpeg_trims_it(tmp_path, crc):
    wav = clip.write_wav(tmp_path / "clip.wav", 1.0)
    data = lame_encode(wav, tmp_path / "clip.mp3", "-b", "64", *(["-p"] if crc else []))
    x = clip.speech_like(1.0)
    got, dec = decode("mp3", data, "chunks")
    np.testing.assert_array_equal(got, samples.container_decode(data)[0])
    assert len(got) == len(x) and lag(x, got) == 0  # lame's tag says delay and padding: sample exact
    assert dec.segments == 1 and not dec.truncated


@needs_lame
@needs_ffmpeg
def test_a_lame_file_through_a_pipe_starts_where_ffmpeg_starts_it(tmp_path):
    """FFmpeg reading a pipe cannot tell the file's size, takes the tag's byte count for a concatenated file and
    ignores its frame count, so it keeps the end padding; the start it trims all the same, as we do."""
    data = lame_encode(clip.write_wav(tmp_path / "clip.wav", 1.0), tmp_path / "clip.mp3", "-b", "64")
    got, _ = decode("mp3", data, "bytes")
    theirs = ffmpeg_decode(data)
    assert lag(got, theirs) == 0
    np.testing.assert_allclose(got, theirs[: len(got)], atol=1.5 / 32768)


def with_tag(frames: int | None = None, delay: int | None = None, padding: int | None = None) -> bytes:
    """The test signal's mp3 (FFmpeg's muxer: Info frame with frame count, byte count, TOC, LAME tag), with the
    frame count, the encoder delay or the end padding of its tag replaced."""
    data = bytearray(samples.encoded("mp3"))
    at = data.index(b"Info", id3_len(bytes(data)))
    assert struct.unpack(">I", data[at + 4 : at + 8])[0] == 15  # frames, bytes, TOC, quality
    if frames is not None:
        data[at + 8 : at + 12] = struct.pack(">I", frames)
    lame = at + 8 + 4 + 4 + 100 + 4
    packed = int.from_bytes(data[lame + 21 : lame + 24], "big")
    delay = packed >> 12 if delay is None else delay
    padding = packed & 0xFFF if padding is None else padding
    data[lame + 21 : lame + 24] = ((delay << 12) | padding).to_bytes(3, "big")
    return bytes(data)


@pytest.mark.parametrize("tag", [dict(frames=20), dict(frames=1, delay=4095, padding=4095), dict(padding=100),
                                 dict(frames=0), dict(frames=0xFFFFFFFF)],
                         ids=["stale-count", "delay-and-padding-past-the-count", "padding-under-529",
                              "count-zero", "count-huge"])
def test_a_stale_or_corrupt_tag_plays_what_ffmpeg_plays(tag):
    data = with_tag(**tag)
    got, dec = decode("mp3", data, "chunks")
    np.testing.assert_array_equal(got, samples.container_decode(data)[0])
    assert not dec.truncated
