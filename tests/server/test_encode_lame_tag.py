"""The built-in server's streaming mp3 starts with a LAME Info frame holding LAME's real encoder delay, so players
trim it: FFmpeg's demuxer (PyAV's av.open, the ffmpeg binary reading a pipe) starts the clip at the same sample as
the pcm rendering of the same request, instead of ~46 ms (1,105 samples at 24 kHz) later."""

from __future__ import annotations

import io
import struct

import aiohttp
import av
import numpy as np
import pytest

from tests.decode.gapless import ffmpeg_decode, id3_len, lag, lame_encode, needs_ffmpeg, needs_lame
from tests.replay_server import speech_body
from tests.server import clip
from voicegui.server.encode import StreamingEncoder
from voicegui.server.lame_tag import DECODER_DELAY, crc16, info_frame
from voicegui.server.thread import ServerThread

SR = 24000
SIDE_INFO = 9  # MPEG-2 layer III, mono: where the tag starts after the 4-byte header


def encode(x: np.ndarray, block: int = 480) -> tuple[list[bytes], bytes]:
    enc = StreamingEncoder("mp3", SR)
    return [enc.encode(x[i : i + block]) for i in range(0, len(x), block)], enc.finish()


def first_frame(data: bytes) -> bytes:
    """The first MPEG audio frame after the ID3 tag (MPEG-2 layer III, 24 kHz: 72 * bit rate / rate bytes)."""
    start = id3_len(data)
    head = data[start : start + 4]
    kbps = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)[head[2] >> 4]
    return data[start : start + 72 * kbps * 1000 // SR + ((head[2] >> 1) & 1)]


def raw_decode(frames: bytes) -> np.ndarray:
    """PyAV's mp3 decoder on the frames one packet each, no demuxer: nothing trimmed."""
    ctx = av.CodecContext.create("mp3float", "r")
    out = [f.to_ndarray().reshape(-1) for p in ctx.parse(frames) for f in ctx.decode(p)]
    out += [f.to_ndarray().reshape(-1) for f in ctx.decode(None)]
    return np.concatenate(out)


def container_decode(data: bytes) -> tuple[np.ndarray, dict[str, str]]:
    """PyAV's demuxer (av.open on the bytes), as the bench's reference decoder and a browser's FFmpeg read it."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)])
        return audio, dict(stream.metadata)


def test_the_stream_starts_with_an_info_frame_holding_the_encoders_real_delay():
    x = clip.speech_like(1.0)
    outs, tail = encode(x)
    data = b"".join(outs) + tail
    info = first_frame(data)
    tag = info[4 + SIDE_INFO :]
    assert info[:2] == b"\xff\xf3" and tag[:4] == b"Info", "no Info frame after the ID3 tag"
    flags, size = struct.unpack(">II", tag[4:12])
    assert flags == 2 and size == 0xFFFFFFFF  # frame count and length unknown while streaming: bytes "unknown"
    lame = tag[12:48]
    assert lame[:9] == b"LAME3.100"
    delay, padding = int.from_bytes(lame[21:24], "big") >> 12, int.from_bytes(lame[21:24], "big") & 0xFFF
    assert padding == 0  # unknown when the stream starts
    assert lame[34:36] == crc16(info[: 4 + SIDE_INFO + 12 + 34]).to_bytes(2, "big")
    # The real delay: where the clip starts in the audio frames decoded with nothing trimmed.
    untrimmed = raw_decode(data[id3_len(data) + len(info) :])
    assert lag(x, untrimmed) == delay + DECODER_DELAY
    assert delay == 576  # LAME 3.100's at 24 kHz, as its own files say (and the issue measured: 1,105 - 529)


def test_ffmpeg_checks_the_tag_crc_and_reads_the_encoder():
    x = clip.speech_like(0.5)
    outs, tail = encode(x)
    _, metadata = container_decode(b"".join(outs) + tail)
    assert metadata.get("encoder") == "LAME3.100"  # FFmpeg sets it only when the tag's CRC-16 matches


@needs_lame
def test_crc16_is_the_one_lame_writes(tmp_path):
    data = lame_encode(clip.write_wav(tmp_path / "clip.wav", 0.5), tmp_path / "clip.mp3", "-b", "64")
    frame = first_frame(data)
    crc_at = 4 + SIDE_INFO + 4 + 4 + 4 + 4 + 100 + 4 + 34  # LAME writes frames, bytes, TOC and quality
    assert frame[4 + SIDE_INFO : 4 + SIDE_INFO + 4] == b"Info"
    assert frame[crc_at : crc_at + 2] == crc16(frame[:crc_at]).to_bytes(2, "big")


def test_the_header_waits_for_the_first_frame_that_carries_the_clip():
    """LAME's first frame holds only its delay (it decodes to nothing once trimmed): the ID3 tag, the Info frame
    and that frame go out together with the next, so the first bytes out still decode to the clip's start."""
    x = clip.speech_like(1.0)
    outs, _ = encode(x)
    first = next(o for o in outs if o)
    frames = raw_decode(first[id3_len(first) + len(first_frame(first)) :])
    assert len(frames) > DECODER_DELAY + 576  # more than the delay: some of the clip is in the first bytes


def test_info_frame_refuses_what_it_cannot_say():
    frame = first_frame(b"".join(encode(clip.speech_like(0.5))[0]))
    with pytest.raises(ValueError, match="not an mp3"):
        info_frame(b"\xff\xf3\x84", 576, 64000)
    with pytest.raises(ValueError, match="not an mp3"):
        info_frame(b"\xff\xf1" + frame[2:], 576, 64000)  # ADTS
    with pytest.raises(ValueError, match="12 bits"):
        info_frame(frame, 4096, 64000)
    with pytest.raises(ValueError, match="too short"):
        info_frame(frame[:40], 576, 64000)


async def _post(server: ServerThread, fmt: str) -> bytes:
    async with aiohttp.ClientSession() as s:
        async with s.post(server.base_url + "/audio/speech", json=speech_body(response_format=fmt)) as r:
            assert r.status == 200
            return await r.read()


async def test_pyav_starts_the_servers_mp3_where_its_pcm_starts(server):
    pcm = np.frombuffer(await _post(server, "pcm"), "<i2").astype(np.float32) / 32768.0
    mp3, _ = container_decode(await _post(server, "mp3"))
    assert lag(pcm, mp3) == 0
    # The end padding is unknown when the stream starts, so it stays: less than a frame and a half of LAME's.
    assert 0 <= len(mp3) - len(pcm) < 576 + 288


@needs_ffmpeg
async def test_ffmpeg_reading_a_pipe_starts_the_servers_mp3_where_its_pcm_starts(server):
    pcm = np.frombuffer(await _post(server, "pcm"), "<i2").astype(np.float32) / 32768.0
    mp3 = ffmpeg_decode(await _post(server, "mp3"))
    assert lag(pcm, mp3) == 0
    assert 0 <= len(mp3) - len(pcm) < 576 + 288


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_other_rates_start_at_the_first_sample(rate):
    """piper voices speak at 22.05 kHz (MPEG-2, like 24 kHz); 44.1/48 kHz are MPEG-1 (1,152-sample frames)."""
    x = clip.speech_like(1.0, rate)
    enc = StreamingEncoder("mp3", rate)
    data = b"".join(enc.encode(x[i : i + 480]) for i in range(0, len(x), 480)) + enc.finish()
    start = id3_len(data)
    side = (17 if rate > 24000 else 9) + 4
    assert data[start + side : start + side + 4] == b"Info"
    got, _ = container_decode(data)
    assert lag(x, got) == 0
