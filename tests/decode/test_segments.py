"""Bodies that hold several whole files back to back, one per sentence (Kokoro ONNX servers when streaming,
chatterbox-tts-api, ...): each file is its own decoder segment, played gaplessly, no header byte played as audio.

The files are made here with real encoders (Python's wave module; FFmpeg's encoders and muxers through PyAV), and
the decode is checked against PyAV's container decode of each file on its own, concatenated: sample-exact for the
lossless formats, length and correlation for the lossy ones. Every body is fed whole, one byte at a time and in
small irregular chunks.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import wave

import numpy as np
import pytest

try:
    from . import audio_samples as samples
except ImportError:  # tests/decode collected as plain directory (no package)
    sys.path.insert(0, os.path.dirname(__file__))
    import audio_samples as samples

from voicegui.decode.stream_decoder import StreamDecoder, create_decoder

RATE = 24000
FEEDS = ["whole", "bytes", "chunks"]


def sentence(i: int, rate: int = RATE) -> np.ndarray:
    """A voiced 'sentence' of its own length and pitch, faded in and out, int16. Deterministic."""
    n = int(rate * (0.45 + 0.13 * i))
    t = np.arange(n) / rate
    f0 = 110.0 + 23.0 * i + 20.0 * np.sin(2 * np.pi * 1.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum((0.5 / k) * np.sin(k * phase) for k in range(1, 6)) * np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None)
    x = x + 0.01 * np.random.default_rng(i).standard_normal(n)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    return np.round(x * fade / np.max(np.abs(x)) * 0.6 * 32767).astype(np.int16)


def as_float(sig: np.ndarray) -> np.ndarray:
    return sig.astype(np.float32) / np.float32(32768.0)


def wav_exact(sig: np.ndarray, rate: int = RATE) -> bytes:
    """A wav with exact sizes, as Python's wave module (and soundfile) write it."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(sig.astype("<i2").tobytes())
    return buf.getvalue()


def wav_streamed(sig: np.ndarray, rate: int = RATE, size: int = 0xFFFFFFFF) -> bytes:
    """A wav with a streaming header: RIFF and data sizes unknown (0xFFFFFFFF, or 0)."""
    header = b"RIFF" + struct.pack("<I", size) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", size)
    return header + sig.astype("<i2").tobytes()


def pieces(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    sizes = [1, 7, 44, 3, 129, 2, 511, 36, 1000]  # irregular: cuts land inside headers and frames
    out, pos, k = [], 0, 0
    while pos < len(data):
        out.append(data[pos : pos + sizes[k % len(sizes)]])
        pos += sizes[k % len(sizes)]
        k += 1
    return out


def decode(fmt: str, data: bytes, how: str, output_rate: int | None = None) -> tuple[np.ndarray, StreamDecoder]:
    dec = create_decoder(fmt, output_rate)
    out = [dec.feed(p) for p in pieces(data, how)]
    out.append(dec.flush())
    return np.concatenate(out), dec


def correlation(x: np.ndarray, ref: np.ndarray) -> float:
    m = min(len(x), len(ref))
    return float(np.corrcoef(x[:m], ref[:m])[0, 1])


# --- wav ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", FEEDS)
@pytest.mark.parametrize("make", [wav_exact, wav_streamed, lambda s: wav_streamed(s, size=0)],
                         ids=["exact-sizes", "streamed-ffffffff", "streamed-0"])
def test_wav_files_back_to_back_play_whole_without_clicks(make, how):
    sigs = [sentence(i) for i in range(3)]
    got, dec = decode("wav", b"".join(make(s) for s in sigs), how)
    # sample-exact: every file's audio, nothing of the later headers (which would be ~22 samples of noise)
    np.testing.assert_array_equal(got, as_float(np.concatenate(sigs)))
    assert dec.segments == 3 and not dec.truncated and dec.format_mismatch is None
    assert dec.sample_rate == RATE


def test_wav_trailing_chunk_before_the_next_file_is_skipped():
    sigs = [sentence(i) for i in range(2)]
    first = wav_exact(sigs[0])
    trailer = b"LIST" + struct.pack("<I", 9) + b"INFOISFT\x00" + b"\x00"  # odd size: pad byte
    got, dec = decode("wav", first + trailer + wav_exact(sigs[1]), "chunks")
    np.testing.assert_array_equal(got, as_float(np.concatenate(sigs)))
    assert dec.segments == 2


def test_streamed_wav_audio_that_looks_like_a_header_is_not_cut():
    sig = sentence(1)
    header = wav_streamed(sentence(0))[:44]  # a real header, planted inside the audio
    raw = bytearray(sig.astype("<i2").tobytes())
    raw[1001 : 1001 + 44] = header  # odd position: not on a sample frame, so not a header
    raw[4000:4004] = b"RIFF"  # aligned, but no sane 'fmt ' chunk follows
    raw[8000:8016] = b"RIFF\xff\xff\xff\xffWAVEfmt "
    raw[8016:8020] = struct.pack("<I", 16)  # then an invalid format (0 channels)
    body = wav_streamed(np.frombuffer(bytes(raw), dtype="<i2"))
    for how in FEEDS:
        got, dec = decode("wav", body, how)
        np.testing.assert_array_equal(got, as_float(np.frombuffer(bytes(raw), dtype="<i2")))
        assert dec.segments == 1


@pytest.mark.parametrize("output_rate", [None, 48000])
def test_later_file_at_another_rate_is_resampled_not_played_at_the_wrong_speed(output_rate):
    sigs = [sentence(0), sentence(1, rate=16000), sentence(2)]
    body = wav_exact(sigs[0]) + wav_exact(sigs[1], rate=16000) + wav_exact(sigs[2])
    for how in ("whole", "chunks"):
        got, dec = decode("wav", body, how, output_rate=output_rate)
        target = output_rate or RATE
        assert dec.sample_rate == target
        # each file lasts as long as it should at the one output rate
        seconds = len(sigs[0]) / RATE + len(sigs[1]) / 16000 + len(sigs[2]) / RATE
        assert abs(len(got) - seconds * target) <= 64
        # and the 16 kHz sentence sounds like itself at the output rate
        start = round(len(sigs[0]) / RATE * target)
        middle = got[start : start + round(len(sigs[1]) / 16000 * target)]
        ref = np.interp(np.arange(len(middle)) * 16000 / target, np.arange(len(sigs[1])), as_float(sigs[1]))
        assert correlation(middle, ref) >= 0.98


# --- flac -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", FEEDS)
def test_flac_files_back_to_back_are_sample_exact(how):
    sigs = [sentence(i) for i in range(3)]
    files = [samples.encode("flac", s, RATE) for s in sigs]
    got, dec = decode("flac", b"".join(files), how)
    expected = np.concatenate([samples.container_decode(f)[0] for f in files])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, as_float(np.concatenate(sigs)))
    assert dec.segments == 3 and not dec.truncated


# --- mp3 ------------------------------------------------------------------------------------------------------


def mp3_file(i: int, id3: bool = True, rate: int = RATE) -> bytes:
    """One sentence as FFmpeg's mp3 muxer writes it with LAME: [ID3v2] + Xing/Info frame (LAME tag) + frames."""
    return samples.encode("mp3", sentence(i, rate), rate, options=None if id3 else {"id3v2_version": "0"})


def lossy_check(got: np.ndarray, files: list[bytes], sigs: list[np.ndarray]) -> None:
    """Each file as FFmpeg decodes it alone, concatenated (its gapless info applied): here exactly that."""
    expected = np.concatenate([samples.container_decode(f)[0] for f in files])
    assert len(got) == len(expected) == sum(len(s) for s in sigs)
    assert correlation(got, expected) >= 0.98
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("how", FEEDS)
@pytest.mark.parametrize("id3", [True, False], ids=["id3-each", "info-frame-each"])
def test_mp3_files_back_to_back_join_without_silence(id3, how):
    sigs = [sentence(i) for i in range(3)]
    files = [mp3_file(i, id3) for i in range(3)]
    got, dec = decode("mp3", b"".join(files), how)
    lossy_check(got, files, sigs)
    assert dec.segments == 3 and not dec.truncated and dec.format_mismatch is None


def crc_info_frame(mp3: bytes) -> bytes:
    """The file as `lame -p` writes it: the Info frame's header says CRC-protected (protection bit 0) and carries
    the CRC in bytes 4-5, but LAME writes its tag where it would be without the CRC (lame_get_lametag_frame)."""
    data = bytearray(mp3)
    data[1] &= 0xFE
    data[4:6] = b"\x5a\xa5"
    return bytes(data)


def test_crc_protected_info_frame_is_found_where_lame_writes_it():
    clean = mp3_file(0, id3=False)
    got, dec = decode("mp3", crc_info_frame(clean), "chunks")
    expected, _ = decode("mp3", clean, "whole")
    np.testing.assert_array_equal(got, expected)  # no Info frame played as 48 ms of silence, delay trimmed
    assert len(got) == len(sentence(0))


@pytest.mark.parametrize("how", FEEDS)
def test_mp3_with_junk_before_the_first_frame_plays(how):
    clean = mp3_file(1, id3=False)
    junk = bytes(np.random.default_rng(5).integers(0, 256, 700, dtype=np.uint8).tolist())
    junk = junk[:100] + b"\xff\xfb\x90" + junk[100:400] + b"\xff\xf3" + junk[400:]  # lone sync words
    got, dec = decode("mp3", junk + clean, how)
    expected, _ = decode("mp3", clean, "whole")
    np.testing.assert_array_equal(got, expected)
    assert dec.detected_format == "mp3" and not dec.truncated


def test_mp3_ending_in_id3v1_and_ape_tags_is_not_truncated():
    clean = mp3_file(2, id3=False)
    id3v1 = b"TAG" + b"title".ljust(30, b"\x00") + b"\x00" * 94 + b"\x00"
    items = b"\x05\x00\x00\x00\x00\x00\x00\x00Title\x00hello"
    ape_footer = b"APETAGEX" + struct.pack("<IIII", 2000, len(items) + 32, 1, 0) + b"\x00" * 8
    ape_header = b"APETAGEX" + struct.pack("<IIII", 2000, len(items) + 32, 1, 1 << 29 | 1 << 31) + b"\x00" * 8
    expected, _ = decode("mp3", clean, "whole")
    for trailer in (id3v1, ape_header + items + ape_footer + id3v1):
        for how in FEEDS:
            got, dec = decode("mp3", clean + trailer, how)
            np.testing.assert_array_equal(got, expected)
            assert not dec.truncated, (trailer[:8], how)


# --- containers no format asks for: WebM, MP4 -----------------------------------------------------------------

CONTAINERS = {
    # name: (codec as in audio_samples, muxer, muxer options)
    "webm-opus": ("opus", "webm", None),
    "mp4-moov-last": ("aac", "mp4", None),
    "mp4-moov-first": ("aac", "mp4", {"movflags": "faststart"}),
    "mp4-fragmented": ("aac", "mp4", {"movflags": "frag_keyframe+empty_moov"}),
}


def long_sentence() -> np.ndarray:
    return np.concatenate([sentence(i) for i in range(8)])  # ~8 s: several demuxer passes


@pytest.mark.parametrize("how", ["whole", "chunks"])
@pytest.mark.parametrize("name", list(CONTAINERS))
def test_webm_and_mp4_are_named_and_played(name, how, tmp_path):
    codec, muxer, options = CONTAINERS[name]
    data = samples.encode(codec, sentence(3), RATE, container=muxer, options=options, path=str(tmp_path / "f"))
    got, dec = decode("opus", data, how)
    expected, _ = samples.container_decode(data)
    kind = "webm" if muxer == "webm" else "mp4"
    label = "WebM (Matroska)" if kind == "webm" else "MP4/M4A"
    assert dec.detected_format == kind
    assert dec.format_mismatch == f"asked for opus, the server sent {label} audio; playing it anyway"
    np.testing.assert_array_equal(got, expected)
    assert abs(len(got) - len(sentence(3)) * dec.sample_rate / RATE) <= 2048  # codec priming at most


@pytest.mark.parametrize("name,progressive", [("webm-opus", True), ("mp4-fragmented", True),
                                              ("mp4-moov-last", False)])
def test_container_plays_as_its_bytes_arrive_where_it_can(name, progressive):
    codec, muxer, options = CONTAINERS[name]
    data = samples.encode(codec, long_sentence(), RATE, container=muxer, options=options)
    dec = create_decoder("aac")
    outs = [dec.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    outs.append(dec.flush())
    early = sum(len(o) for o in outs[: len(outs) // 2])
    if progressive:
        assert early > 0  # audio before half the body is in
    else:
        assert early == 0  # the index is at the end: nothing can be read before it
    np.testing.assert_array_equal(np.concatenate(outs), samples.container_decode(data)[0])


# --- opus -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", FEEDS)
def test_chained_ogg_opus_trims_pre_skip_and_padding_at_each_join(how):
    sigs = [sentence(i) for i in range(3)]
    files = [samples.encode("opus", s, RATE) for s in sigs]
    got, dec = decode("opus", b"".join(files), how)
    # each link alone, as our decoder plays a single file (pre-skip and end padding trimmed; checked against
    # FFmpeg in test_stream_decoder.py): the chain is exactly their concatenation, at 24 kHz
    alone = [decode("opus", f, "whole")[0] for f in files]
    assert abs(len(got) - sum(len(s) for s in sigs)) <= 3 * 8
    assert correlation(got, np.concatenate(alone)) >= 0.98
    assert correlation(got, as_float(np.concatenate(sigs))) >= 0.98
    assert not dec.truncated
