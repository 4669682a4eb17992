"""StreamingEncoder: every format decodes back to the clip, and bytes come out while audio goes in."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest

from tests.server import clip
from voicegui.formats import FORMATS
from voicegui.server.encode import StreamingEncoder
from voicegui.wavfile import wav_header

SR = 24000


def _encode_in_blocks(fmt: str, x: np.ndarray, block: int = 480) -> tuple[list[bytes], bytes]:
    enc = StreamingEncoder(fmt, SR)
    outs = [enc.encode(x[i:i + block]) for i in range(0, len(x), block)]
    return outs, enc.finish()


def _decode(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        parts = []
        rate = 0
        for frame in c.decode(stream):
            rate = frame.sample_rate
            a = frame.to_ndarray()
            if a.dtype == np.int16:
                a = a.astype(np.float32) / 32768.0
            parts.append(a.reshape(a.shape[0], -1)[0] if frame.format.is_planar else a.reshape(-1))
        return np.concatenate(parts), rate


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "pcm"])
def test_each_format_decodes_to_the_clip_length(fmt):
    x = clip.speech_like(2.0)
    outs, tail = _encode_in_blocks(fmt, x)
    y, rate = _decode(b"".join(outs) + tail)
    # Codecs add priming/padding (mp3 ~50 ms, aac ~48 ms); the length must still be right within 0.1 s.
    assert abs(len(y) / rate - 2.0) < 0.1
    assert 0.5 < float(np.max(np.abs(y))) < 1.0


@pytest.mark.parametrize("fmt", FORMATS)
def test_bytes_come_out_progressively(fmt):
    x = clip.speech_like(2.0)
    outs, tail = _encode_in_blocks(fmt, x)
    total = sum(map(len, outs)) + len(tail)
    first_half = sum(map(len, outs[: len(outs) // 2]))
    # Well before the end, a good share of the stream is already out (not all held for finish()).
    assert first_half > 0.3 * total
    assert sum(1 for o in outs if o) >= 10


def test_container_signatures_and_lossless_pcm():
    x = clip.speech_like(0.5)
    starts = {}
    for fmt in FORMATS:
        outs, tail = _encode_in_blocks(fmt, x)
        starts[fmt] = b"".join(outs) + tail
    assert starts["mp3"][:3] == b"ID3"
    assert starts["flac"][:4] == b"fLaC"
    assert starts["opus"][:4] == b"OggS" and b"OpusHead" in starts["opus"][:64]
    assert starts["aac"][0] == 0xFF and starts["aac"][1] & 0xF0 == 0xF0  # ADTS sync word
    wav = starts["wav"]
    assert wav[:44] == wav_header(SR)
    assert struct.unpack("<I", wav[4:8])[0] == 0xFFFFFFFF and struct.unpack("<I", wav[40:44])[0] == 0xFFFFFFFF
    expected = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes()
    assert starts["pcm"] == expected
    assert wav[44:] == expected


def test_opus_pages_are_small():
    x = clip.speech_like(2.0)
    outs, tail = _encode_in_blocks("opus", x)
    data = b"".join(outs) + tail
    # ~20 ms pages: a 2 s clip gives dozens of pages, not ffmpeg's default two or three.
    assert data.count(b"OggS") >= 50
    assert max(map(len, outs)) < 2000


def test_int16_blocks_and_other_rates():
    x = (clip.speech_like(0.5, 22050) * 32767).astype(np.int16)
    enc = StreamingEncoder("opus", 22050)  # libopus cannot take 22.05 kHz: resampled to 48 kHz inside
    data = b"".join(enc.encode(x[i:i + 441]) for i in range(0, len(x), 441)) + enc.finish()
    y, rate = _decode(data)
    assert rate == 48000 and abs(len(y) / rate - 0.5) < 0.05


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="unknown format"):
        StreamingEncoder("ogg", SR)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_header_goes_out_with_the_first_audio(fmt):
    """The server's first byte is the start of audio: no header sent alone while the encoder looks ahead."""
    from voicegui.decode.stream_decoder import StreamDecoder

    x = clip.speech_like(1.0)
    outs, _ = _encode_in_blocks(fmt, x)
    first = next(o for o in outs if o)
    decoder = StreamDecoder(fmt)
    assert len(decoder.feed(first)) > 0, "the first bytes out decode to no audio"
    assert not any(outs[: outs.index(first)])


def test_a_stream_with_no_audio_is_still_a_whole_file():
    enc = StreamingEncoder("flac", SR)
    assert enc.encode(np.zeros(0, np.float32)) == b""
    assert enc.finish()[:4] == b"fLaC"


def test_pcm_and_wav_are_encoded_without_loading_pyav():
    """PyAV (FFmpeg's libraries, ~14 MB resident) is imported by the first compressed format's encoder, not with
    the module: the default format, pcm, and wav are written by hand (issue 17)."""
    from tests.test_memory import run_python

    out = run_python("""
        import json, sys
        import numpy as np
        from voicegui.server.encode import StreamingEncoder
        sizes = {}
        for fmt in ("pcm", "wav"):
            enc = StreamingEncoder(fmt, 24000)
            sizes[fmt] = len(enc.encode(np.zeros(480, np.float32)) + enc.finish())
        before = "av" in sys.modules
        StreamingEncoder("opus", 24000).close()
        print(json.dumps({"sizes": sizes, "loaded": [before, "av" in sys.modules]}))
    """)
    assert out["sizes"] == {"pcm": 960, "wav": 44 + 960}
    assert out["loaded"] == [False, True]
