"""Incremental audio decoders for what /v1/audio/speech servers send: pcm, wav, mp3, aac (ADTS), flac, opus (Ogg).

`create_decoder(fmt)` returns a StreamDecoder; `feed(bytes)` returns float32 mono samples as soon as a whole
sample / frame / packet is in, `flush()` drains at end of stream. The container is identified from the first
bytes (the server may send something other than what was asked; we play it and say so).

Per format (each chosen for at most one frame of delay; measured with tests/core/audio_samples.py):
- pcm, wav: parsed here; a trailing partial sample is carried to the next feed. Exact: s16 / 32768.
- mp3, aac: PyAV raw parser (`CodecContext.parse`) + decoder. Measured on av 18.1: the parser emits each frame
  as soon as its last byte arrives (it reads the frame length from the header), so no framing of our own.
  ID3v2 tags are skipped here before the parser sees them (without storing them: they may hold cover art).
- flac: flac_frames.FlacFrameSplitter cuts whole frames (FFmpeg's parser reads ~1 s ahead); PyAV flac decoder
  with STREAMINFO as extradata. Exact.
- opus: ogg.OggPacketReader cuts packets from the segment table as bytes arrive; PyAV opus decoder with the
  OpusHead as extradata but pre-skip zeroed, because we trim pre-skip and the end (last page's granule) here,
  then resample 48 kHz -> the OpusHead input rate with av.AudioResampler.
The same bytes always become the same packets for the same decoder, so any split of the input gives the same
samples.

Threads: everything runs on the thread that calls feed()/flush() (the asyncio loop thread in voicegui); no threads
of its own, no locks. Memory: bounded by one frame/packet plus small headers; the stream is never kept whole.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Protocol

import av
import numpy as np

from voicegui.core.flac_frames import FlacError, FlacFrameSplitter
from voicegui.core.ogg import OggError, OggPacket, OggPacketReader

FORMATS = ("pcm", "wav", "mp3", "aac", "flac", "opus")
PCM_RATE = 24000  # raw pcm carries no header: OpenAI and Kokoro send 24 kHz mono s16le

_EMPTY = np.zeros(0, dtype=np.float32)
_TEXT_PROBE = 64  # bytes looked at to decide that a body starting with '{' or '<' is text
_MAX_CONSECUTIVE_ERRORS = 8  # codec rejections in a row before we call the stream garbage
_MAX_BYTES_WITHOUT_AUDIO = 1 << 16  # compressed bytes with no decoded frame before we give up
_AV_ERRORS = (av.FFmpegError, ValueError)


class DecodeError(Exception):
    """Clear one-line user-facing message in str(e)."""


def create_decoder(requested_format: str, output_rate: int | None = None) -> StreamDecoder:
    """A fresh incremental decoder for one response body of `requested_format`."""
    fmt = requested_format.lower().strip()
    if fmt not in FORMATS:
        raise ValueError(f"unknown audio format {requested_format!r}; expected one of {', '.join(FORMATS)}")
    if output_rate is not None and output_rate <= 0:
        raise ValueError(f"output_rate must be positive, got {output_rate}")
    return StreamDecoder(fmt, output_rate)


# ---------------------------------------------------------------------------------------------------------------
# sniffing


def _mpeg_audio_frame_len(h: bytes | bytearray) -> int | None:
    """Length of an MPEG-1/2/2.5 layer I/II/III frame from its 4-byte header, None if not a valid header."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version = (h[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5, 1: reserved
    layer = (h[1] >> 1) & 3  # 1: III, 2: II, 3: I, 0: reserved (that is where ADTS differs)
    br_index, sr_index, pad = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer == 0 or br_index in (0, 15) or sr_index == 3:
        return None
    rate = (44100, 48000, 32000)[sr_index] >> (0 if version == 3 else 1 if version == 2 else 2)
    if version == 3:
        table = {3: _BR_V1_L1, 2: _BR_V1_L2, 1: _BR_V1_L3}[layer]
    else:
        table = _BR_V2_L1 if layer == 3 else _BR_V2_L23
    bitrate = table[br_index] * 1000
    if layer == 3:
        return (12 * bitrate // rate + pad) * 4
    if layer == 1 and version != 3:
        return 72 * bitrate // rate + pad
    return 144 * bitrate // rate + pad


_BR_V1_L1 = (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448)
_BR_V1_L2 = (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384)
_BR_V1_L3 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BR_V2_L1 = (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256)
_BR_V2_L23 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)


def _adts_frame_len(h: bytes | bytearray) -> int | None:
    """Length of an ADTS frame from its header, None if not a valid ADTS header."""
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0:
        return None
    if (h[2] >> 2) & 0xF >= 13:  # sampling frequency index
        return None
    length = ((h[3] & 3) << 11) | (h[4] << 3) | (h[5] >> 5)
    return length if length >= 7 else None


def _sync_kind(h: bytes | bytearray) -> str | None:
    """'aac' or 'mp3' for a plausible frame sync at h[0:2], else None. Layer bits 00 means ADTS."""
    if len(h) < 2 or h[0] != 0xFF:
        return None
    if h[1] & 0xF6 == 0xF0:
        return "aac"
    if h[1] & 0xE0 == 0xE0 and (h[1] >> 1) & 3 != 0 and (h[1] >> 3) & 3 != 1:
        return "mp3"
    return None


def _mpeg_codec(head: bytes) -> str:
    """FFmpeg decoder for the MPEG audio layer in the first frame header (float decoders: no s16 clipping)."""
    layer = (head[1] >> 1) & 3 if len(head) >= 2 else 1
    return {1: "mp3float", 2: "mp2float", 3: "mp1float"}.get(layer, "mp3float")


def _frame_len(kind: str, h: bytes | bytearray) -> int | None:
    return _adts_frame_len(h) if kind == "aac" else _mpeg_audio_frame_len(h)


def _text_error(head: bytes) -> DecodeError:
    text = head.decode("ascii", "replace")
    snippet = re.sub(r"\s+", " ", text).strip()
    if len(snippet) > 80:
        snippet = snippet[:77] + "..."
    kind = "a JSON body" if snippet.startswith(("{", "[")) else "an HTML/XML page" if snippet.startswith("<") else "text"
    return DecodeError(f"the server sent {kind} instead of audio: {snippet}")


def _looks_like_text(head: bytes | bytearray) -> bool:
    stripped = bytes(head).lstrip(b" \t\r\n\xef\xbb\xbf")
    if not stripped or stripped[:1] not in (b"{", b"<"):
        return False
    return all(32 <= b < 127 or b in (9, 10, 13) for b in head[:_TEXT_PROBE])


# ---------------------------------------------------------------------------------------------------------------
# sample conversion


_MAX_CHANNELS = 8  # speech servers send mono (sometimes stereo); more is a corrupt header, not audio
_SAMPLE_DTYPES = {"u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}


class _BadFrame(ValueError):
    """A decoded frame whose shape cannot be trusted (counted as a rejected packet)."""


def _frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """float32 mono of a decoded frame; integer samples scaled exactly (s16 / 32768).

    The planes are read here with their sizes checked instead of through AudioFrame.to_ndarray(): fuzzing
    found ADTS input for which FFmpeg's AAC decoder returns a frame whose layout says 63 channels while PyAV
    sees 73 planes, and to_ndarray() then reads unmapped memory (a segfault, tests/core/fuzz_corpus/
    any-aac-63-channels-segfault.bin). Such a frame is rejected like a bad packet.
    """
    channels = frame.layout.nb_channels
    samples = frame.samples
    planar = frame.format.is_planar
    dtype = _SAMPLE_DTYPES.get(frame.format.name.rstrip("p"))
    planes = frame.planes
    if dtype is None or not 1 <= channels <= _MAX_CHANNELS or samples < 0:
        raise _BadFrame(f"unusable frame: {channels} channels of {frame.format.name}")
    if len(planes) != (channels if planar else 1):
        raise _BadFrame(f"frame has {len(planes)} planes for {channels} channels")
    per_plane = samples * (1 if planar else channels)
    itemsize = np.dtype(dtype).itemsize
    if any(plane.buffer_size < per_plane * itemsize for plane in planes):
        raise _BadFrame("frame planes are shorter than their sample count")
    if planar:
        arr = np.stack([np.frombuffer(plane, dtype=dtype, count=samples) for plane in planes])
    else:
        arr = np.frombuffer(planes[0], dtype=dtype, count=per_plane).reshape(-1, channels).T
    return _to_float_mono(arr)


def _to_float_mono(arr: np.ndarray) -> np.ndarray:
    """(channels, samples) of any sample type -> float32 mono in [-1, 1]."""
    float_input = arr.dtype.kind == "f"
    if arr.dtype == np.int16:
        arr = arr.astype(np.float32) / np.float32(32768.0)
    elif arr.dtype == np.int32:
        arr = (arr.astype(np.float64) / 2147483648.0).astype(np.float32)
    elif arr.dtype == np.uint8:
        arr = (arr.astype(np.float32) - 128.0) / np.float32(128.0)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 becomes inf, clipped below
            arr = arr.astype(np.float32, copy=False)
    mono = arr[0] if arr.shape[0] == 1 else arr.mean(axis=0, dtype=np.float32)
    if float_input:
        # lossy decoders overshoot slightly; NaN/inf from a broken stream must not reach the device
        mono = np.clip(np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
    return np.ascontiguousarray(mono, dtype=np.float32)


class _Pcm:
    """Little-endian interleaved integer/float PCM -> float32 mono, carrying a partial sample frame."""

    def __init__(self, width: int, channels: int, is_float: bool) -> None:
        self._width = width
        self._channels = channels
        self._float = is_float
        self._block = width * channels
        self._carry = b""

    @property
    def carry(self) -> int:
        return len(self._carry)

    def convert(self, data: bytes) -> np.ndarray:
        if self._carry:
            data = self._carry + data
        usable = len(data) - len(data) % self._block
        self._carry = data[usable:]
        if not usable:
            return _EMPTY
        raw = memoryview(data)[:usable]
        w = self._width
        if self._float:
            arr = np.frombuffer(raw, dtype="<f4" if w == 4 else "<f8")
        elif w == 1:
            arr = np.frombuffer(raw, dtype=np.uint8)
        elif w == 2:
            arr = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        elif w == 3:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            arr = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24).astype(np.int32)  # left-aligned in int32
        else:
            arr = np.frombuffer(raw, dtype="<i4").astype(np.int32)
        return _to_float_mono(arr.reshape(-1, self._channels).T)


# ---------------------------------------------------------------------------------------------------------------
# backends: feed(bytes) -> list of float32 mono arrays at `rate`


class _Backend(Protocol):
    rate: int | None
    truncated: bool

    def feed(self, data: bytes) -> list[np.ndarray]: ...

    def flush(self) -> list[np.ndarray]: ...


class _PcmBackend:
    def __init__(self) -> None:
        self.rate: int | None = PCM_RATE
        self.truncated = False
        self._pcm = _Pcm(2, 1, False)

    def feed(self, data: bytes) -> list[np.ndarray]:
        return [self._pcm.convert(data)]

    def flush(self) -> list[np.ndarray]:
        self.truncated = self._pcm.carry > 0
        return []


class _WavBackend:
    """RIFF/RF64 WAVE: walks chunks up to 'data' (skipping LIST etc. without storing them), then PCM."""

    _UNKNOWN_SIZES = (0, 0xFFFFFFFF)

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self._head = bytearray()
        self._stage = "riff"
        self._skip = 0
        self._pcm: _Pcm | None = None
        self._data_left: int | None = None  # None: size unknown (streamed), play to the end
        self._fmt: tuple[int, int, int, int] | None = None

    def feed(self, data: bytes) -> list[np.ndarray]:
        if self._stage == "data":
            return [self._data(data)]
        self._head += data
        while self._stage != "data":
            if not self._header_step():
                return []
        rest = bytes(self._head)
        self._head.clear()
        return [self._data(rest)]

    def _header_step(self) -> bool:
        head = self._head
        if self._stage == "riff":
            if len(head) < 12:
                return False
            if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
                raise DecodeError("the wav stream has no RIFF/WAVE header")
            del head[:12]
            self._stage = "chunk"
            return True
        if self._stage == "skip":
            n = min(self._skip, len(head))
            del head[:n]
            self._skip -= n
            if self._skip:
                return False
            self._stage = "chunk"
            return True
        if len(head) < 8:
            return False
        cid, size = bytes(head[:4]), int.from_bytes(head[4:8], "little")
        if cid == b"data":
            if self._fmt is None:
                raise DecodeError("the wav stream has audio data before its 'fmt ' chunk")
            del head[:8]
            self._start_data(size)
            return True
        if cid == b"fmt ":
            if size < 16 or size > 1024:
                raise DecodeError("the wav stream has an invalid 'fmt ' chunk")
            if len(head) < 8 + size:
                return False
            self._parse_fmt(bytes(head[8 : 8 + size]))
            del head[: 8 + size]
            self._skip = size & 1  # pad byte of an odd-sized chunk
            self._stage = "skip" if self._skip else "chunk"
            return True
        if size == 0xFFFFFFFF:
            raise DecodeError(f"the wav stream has a chunk {cid!r} of unknown size before its audio")
        del head[:8]
        self._skip = size + (size & 1)  # chunks are padded to even length
        self._stage = "skip" if self._skip else "chunk"
        return True

    def _parse_fmt(self, body: bytes) -> None:
        tag = int.from_bytes(body[0:2], "little")
        channels = int.from_bytes(body[2:4], "little")
        rate = int.from_bytes(body[4:8], "little")
        bits = int.from_bytes(body[14:16], "little")
        if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag leads the sub-format GUID
            tag = int.from_bytes(body[24:26], "little")
        if channels < 1 or not 1000 <= rate <= 768000:
            raise DecodeError(f"the wav stream has an invalid format ({channels} channels, {rate} Hz)")
        if tag == 1 and bits in (8, 16, 24, 32):
            is_float = False
        elif tag == 3 and bits in (32, 64):
            is_float = True
        else:
            raise DecodeError(f"the wav stream uses an unsupported encoding (format tag {tag}, {bits} bits)")
        self._fmt = (tag, channels, rate, bits)
        self._pcm = _Pcm(bits // 8, channels, is_float)
        self.rate = rate

    def _start_data(self, size: int) -> None:
        self._stage = "data"
        # streamed wav writes 0 or 0xFFFFFFFF (RF64 too, its real size is in 'ds64'): then play to the end
        self._data_left = None if size in self._UNKNOWN_SIZES else size

    def _data(self, data: bytes) -> np.ndarray:
        assert self._pcm is not None
        if self._data_left is not None:
            data = data[: self._data_left]  # bytes after the data chunk (trailing LIST, id3) are not audio
            self._data_left -= len(data)
        return self._pcm.convert(data) if data else _EMPTY

    def flush(self) -> list[np.ndarray]:
        if self._stage != "data":
            self.truncated = True
            return []
        assert self._pcm is not None
        self.truncated = self._pcm.carry > 0 or bool(self._data_left)
        return []


class _CodecErrors:
    """Tells a broken stream from the odd damaged packet: many rejections in a row, or many bytes and no audio."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._consecutive = 0
        self._bytes_without_audio = 0
        self.had_audio = False

    def rejected(self, exc: Exception) -> None:
        self._consecutive += 1
        if self._consecutive >= _MAX_CONSECUTIVE_ERRORS:
            reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]  # FFmpeg's text, no errno
            raise DecodeError(f"the {self._fmt} stream is corrupt: the decoder rejected it ({reason})")

    def accepted(self, samples: int) -> None:
        self._consecutive = 0
        if samples:
            self.had_audio = True
            self._bytes_without_audio = 0

    def fed(self, n: int) -> None:
        # no real frame is anywhere near this long, so this many bytes without audio means garbage
        self._bytes_without_audio += n
        if self._bytes_without_audio > _MAX_BYTES_WITHOUT_AUDIO:
            raise DecodeError(f"the {self._fmt} stream is corrupt: {_MAX_BYTES_WITHOUT_AUDIO} bytes without audio")


def _decode_packet(ctx: av.CodecContext, packet: av.Packet | None, errors: _CodecErrors) -> list[np.ndarray]:
    out = []
    try:
        frames = ctx.decode(packet)
    except _AV_ERRORS as exc:
        if packet is None:
            return out  # draining a decoder that never got a good packet: nothing to drain
        errors.rejected(exc)
        return out
    n = 0
    bad = False
    for frame in frames:
        try:
            arr = _frame_to_mono(frame)
        except _BadFrame as exc:
            bad = True
            errors.rejected(exc)
            continue
        n += len(arr)
        out.append(arr)
    if n or not bad:
        errors.accepted(n)
    return out


def _lame_start_delay(frame: bytes) -> int | None:
    """Samples to drop at the start if `frame` is a Xing/Info tag frame (encoder delay from its LAME extension
    plus the decoder's 529), else None."""
    if len(frame) < 4:
        return None
    version, mono = (frame[1] >> 3) & 3, frame[3] >> 6 == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    pos = 4 + side + (0 if frame[1] & 1 else 2)  # + CRC when the protection bit is 0
    tag = frame[pos : pos + 4]
    if tag not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(frame[pos + 4 : pos + 8], "big")
    pos += 8 + (4 if flags & 1 else 0) + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    lame = frame[pos : pos + 24]
    if len(lame) == 24 and lame[:4] in (b"LAME", b"Lavf", b"Lavc", b"L3.9"):
        return (int.from_bytes(lame[21:24], "big") >> 12) + 529
    return 529


class _ParsedBackend:
    """mp3 / aac: PyAV's raw parser finds frames (measured: it emits each frame as soon as it is complete)."""

    def __init__(self, codec: str, fmt: str) -> None:
        self.rate: int | None = None
        self.truncated = False
        self._kind = fmt
        self._dropped = 0
        self._first = True
        self._skip = 0  # decoded samples still to drop (mp3 encoder + decoder delay)
        self._ctx = av.CodecContext.create(codec, "r")
        self._errors = _CodecErrors(fmt)
        self._fed = 0
        self._packeted = 0

    def feed(self, data: bytes) -> list[np.ndarray]:
        self._errors.fed(len(data))
        self._fed += len(data)
        try:
            packets = self._ctx.parse(data)
        except _AV_ERRORS as exc:
            self._errors.rejected(exc)
            return []
        return self._decode(packets)

    def _decode(self, packets: list[av.Packet]) -> list[np.ndarray]:
        out = []
        for packet in packets:
            self._packeted += packet.size
            if self._first and self._kind == "mp3":
                self._first = False
                delay = _lame_start_delay(bytes(packet))
                if delay is not None:
                    # a Xing/Info frame is metadata that decodes to silence: skip it, and the encoder delay
                    # it records, as FFmpeg's own mp3 demuxer does
                    self._skip = delay
                    continue
            out += self._trim(_decode_packet(self._ctx, packet, self._errors))
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        return out

    def _trim(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        if not self._skip:
            return chunks
        out = []
        for arr in chunks:
            drop = min(self._skip, len(arr))
            self._skip -= drop
            if len(arr) > drop:
                out.append(arr[drop:])
        return out

    def flush(self) -> list[np.ndarray]:
        try:
            packets = self._ctx.parse(None)
        except _AV_ERRORS:
            packets = []
        whole = []
        for packet in packets:
            # the parser hands out the bytes it holds at the end even if the frame is cut short: decoding
            # that would glitch, so a packet shorter than its header says is dropped and reported
            head = bytes(packet)[:7]
            expected = _frame_len(self._kind, head) if _sync_kind(head) == self._kind else None
            if expected is not None and packet.size < expected:
                self._dropped += 1
                continue
            whole.append(packet)
        out = self._decode(whole)
        out += _decode_packet(self._ctx, None, self._errors)
        if out and self.rate is None:
            self.rate = self._ctx.sample_rate
        # bytes that never became a whole packet: the stream ended inside a frame
        self.truncated = self._dropped > 0 or self._fed > self._packeted
        return out


class _FlacBackend:
    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self._split = FlacFrameSplitter()
        self._ctx: av.CodecContext | None = None
        self._errors = _CodecErrors("flac")

    def feed(self, data: bytes) -> list[np.ndarray]:
        try:
            frames = self._split.feed(data)
        except FlacError as exc:
            raise DecodeError(f"the flac stream is corrupt: {exc}") from None
        return self._decode(frames) + self._decode_complete()

    def _decode_complete(self) -> list[np.ndarray]:
        """Decode the buffered frame now if it is already whole, instead of waiting for the next header."""
        candidate = self._split.complete_frame()
        if candidate is None or self._ctx is None:
            return []
        data, block_size = candidate
        try:
            frames = self._ctx.decode(av.Packet(data))
            out = [_frame_to_mono(f) for f in frames]
        except (*_AV_ERRORS, _BadFrame):
            # A chance CRC-16 match inside a frame: not whole yet. It is decoded (and any real fault in it
            # reported) once the next header or the end of the stream delimits it.
            return []
        if sum(map(len, out)) != block_size:
            return []
        self._split.take_complete_frame()
        self._errors.accepted(block_size)
        return out

    def _decode(self, frames: list[bytes]) -> list[np.ndarray]:
        if self._ctx is None and self._split.streaminfo is not None:
            self._ctx = av.CodecContext.create("flac", "r")
            self._ctx.extradata = self._split.streaminfo.raw
            self.rate = self._split.streaminfo.sample_rate
        out = []
        for frame in frames:
            assert self._ctx is not None
            out += _decode_packet(self._ctx, av.Packet(frame), self._errors)
        return out

    def flush(self) -> list[np.ndarray]:
        frames, self.truncated = self._split.flush()
        out = self._decode(frames)
        if self._ctx is not None:
            out += _decode_packet(self._ctx, None, self._errors)
        return out


class _OpusBackend:
    """Ogg Opus: packets cut as they arrive, decoded at 48 kHz, pre-skip and end padding trimmed here."""

    def __init__(self) -> None:
        self.rate: int | None = None
        self.truncated = False
        self._ogg = OggPacketReader()
        self._ctx: av.CodecContext | None = None
        self._errors = _CodecErrors("opus")
        self._skip = 0  # pre-skip samples (48 kHz) still to drop
        self._emitted = 0  # 48 kHz samples handed out for the current logical stream (after pre-skip)
        self._preskip = 0
        self._headers = 0  # header packets seen for the current logical stream (OpusHead, OpusTags)
        self._resampler: _Resampler | None = None
        self._input_rate: int | None = None

    def feed(self, data: bytes) -> list[np.ndarray]:
        if self._headers >= 2:
            self._errors.fed(len(data))  # not before: OpusTags may carry cover art of any size
        try:
            packets = self._ogg.feed(data)
        except OggError as exc:
            raise DecodeError(f"the opus stream is corrupt: {exc}") from None
        out: list[np.ndarray] = []
        for packet in packets:
            out += self._packet(packet)
        return out

    def _packet(self, packet: OggPacket) -> list[np.ndarray]:
        data = packet.data
        if packet.bos:
            out = self._drain()  # a chained stream starts: finish the previous one
            if not data.startswith(b"OpusHead") or len(data) < 19:
                codec = "Vorbis" if data[1:7] == b"vorbis" else "FLAC" if data[1:5] == b"FLAC" else "an unknown codec"
                raise DecodeError(f"the Ogg stream carries {codec}, not Opus")
            self._preskip = int.from_bytes(data[10:12], "little")
            input_rate = int.from_bytes(data[12:16], "little")
            if self._input_rate is None:
                # play at the rate the speech was made at (24 kHz for OpenAI); 0 means "unknown": use 48 kHz
                self._input_rate = input_rate if 8000 <= input_rate <= 48000 else 48000
                self.rate = self._input_rate
            # FFmpeg would apply pre-skip itself; we zero it and trim here so the trimming is ours to check
            extradata = bytearray(data)
            extradata[10:12] = b"\x00\x00"
            self._ctx = av.CodecContext.create("opus", "r")
            self._ctx.extradata = bytes(extradata)
            self._skip = self._preskip
            self._emitted = 0
            self._headers = 1
            return out
        if self._ctx is None:
            return []  # audio of a stream whose OpusHead we never saw
        if self._headers == 1:
            self._headers = 2
            if data.startswith(b"OpusTags") or packet.oversized:
                return []  # comments (possibly with cover art, hence oversized): not audio
        pcm = _decode_packet(self._ctx, av.Packet(data), self._errors)
        return self._trim(pcm, packet.granule - self._preskip if packet.eos else None)

    def _trim(self, chunks: list[np.ndarray], limit: int | None) -> list[np.ndarray]:
        out = []
        for arr in chunks:
            if self._skip:
                drop = min(self._skip, len(arr))
                arr = arr[drop:]
                self._skip -= drop
            if limit is not None:
                arr = arr[: max(0, limit - self._emitted)]  # end padding of the last page
            self._emitted += len(arr)
            if len(arr):
                out.append(arr)
        return self._resample(out)

    def _resample(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        if self._input_rate == 48000:
            return chunks
        if self._resampler is None:
            self._resampler = _Resampler(48000, self._input_rate)
        return self._resampler.push(chunks)

    def _drain(self) -> list[np.ndarray]:
        if self._ctx is None:
            return []
        pcm = _decode_packet(self._ctx, None, self._errors)
        self._ctx = None
        return self._trim(pcm, None)

    def flush(self) -> list[np.ndarray]:
        out = self._drain()
        if self._resampler is not None:
            out += self._resampler.drain()
        self.truncated = self._ogg.mid_unit
        return out


class _Resampler:
    """Streaming float32 mono resampler (av.AudioResampler). Measured: the same samples in give the same
    samples out whatever the chunking, which keeps decoding independent of how the input was split."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._in_rate = in_rate
        self._av = av.AudioResampler(format="flt", layout="mono", rate=out_rate)
        self._pts = 0

    def push(self, chunks: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for arr in chunks:
            if not len(arr):
                continue
            frame = av.AudioFrame.from_ndarray(arr.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self._in_rate
            frame.pts = self._pts  # contiguous timestamps: the filter must not insert or drop samples
            frame.time_base = Fraction(1, self._in_rate)
            self._pts += len(arr)
            out += [_frame_to_mono(res) for res in self._av.resample(frame)]
        return out

    def drain(self) -> list[np.ndarray]:
        return [_frame_to_mono(res) for res in self._av.resample(None)]


# ---------------------------------------------------------------------------------------------------------------
# the public decoder


class StreamDecoder:
    """Incremental decoder for one response body. Not thread-safe: feed/flush from one thread."""

    def __init__(self, requested_format: str, output_rate: int | None = None) -> None:
        self.requested_format = requested_format
        self.detected_format: str | None = None
        self.format_mismatch: str | None = None
        self.sample_rate: int | None = None
        self.truncated = False
        self._output_rate = output_rate
        self._backend: _Backend | None = None
        self._head = bytearray()  # bytes held until the container is identified (a few dozen at most)
        self._id3_left = 0  # bytes of an ID3v2 tag still to skip
        self._fed = 0
        self._samples = 0
        self._resampler: _Resampler | None = None
        self._failed: DecodeError | None = None
        self._done = False

    # -- public ----------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> np.ndarray:
        """Decode what `data` completes; float32 mono in [-1, 1] at `sample_rate`, possibly empty."""
        if self._done:
            raise RuntimeError("feed() after flush()")
        if self._failed is not None:
            raise self._failed
        if not data:
            return _EMPTY
        try:
            self._fed += len(data)
            return self._finish(self._feed(bytes(data)))
        except DecodeError as exc:
            self._failed = exc
            raise

    def flush(self) -> np.ndarray:
        """End of stream: the remaining audio. Raises DecodeError if the stream held no audio at all."""
        if self._done:
            return _EMPTY
        self._done = True
        if self._failed is not None:
            raise self._failed
        if self._fed == 0:
            raise DecodeError("the server sent no audio")
        chunks: list[np.ndarray] = []
        if self._backend is None:
            chunks += self._decide(final=True)
        if self._backend is not None:
            chunks += self._backend.flush()
            self.truncated = self._backend.truncated
        out = self._finish(chunks, final=True)
        if self._samples == 0:
            where = "inside its header" if self._backend is None or self.truncated else "without any audio"
            raise DecodeError(f"the server sent no audio (the {self._label()} stream ended {where})")
        return out

    # -- internals -------------------------------------------------------------------------------------------

    def _label(self) -> str:
        return self.detected_format or self.requested_format

    def _feed(self, data: bytes) -> list[np.ndarray]:
        if self._backend is not None:
            return self._backend.feed(data)
        if self._id3_left:
            n = min(self._id3_left, len(data))
            self._id3_left -= n
            data = data[n:]
        self._head += data
        return self._decide(final=False)

    def _decide(self, final: bool) -> list[np.ndarray]:
        """Identify the container from the held bytes; start the backend once it is known."""
        head = self._head
        while True:
            if self._id3_left:
                n = min(self._id3_left, len(head))
                del head[:n]
                self._id3_left -= n
                if self._id3_left:
                    return []
            if len(head) >= 3 and head[:3] == b"ID3":
                if len(head) < 10:
                    if final:
                        break
                    return []
                size = 0
                for b in head[6:10]:
                    size = (size << 7) | (b & 0x7F)  # synchsafe
                self._id3_left = 10 + size + (10 if head[5] & 0x10 else 0)
                self.detected_format = "mp3"  # until the frames say otherwise (ID3 before ADTS is rare)
                continue
            break
        kind = self._identify(bytes(head), final)
        if kind is None:
            return []
        self._start(kind, bytes(head[:2]))
        rest = bytes(head)
        head.clear()
        assert self._backend is not None
        return self._backend.feed(rest) if rest else []

    def _identify(self, head: bytes, final: bool) -> str | None:
        """Container name, or None to wait for more bytes. Raises DecodeError for text or garbage."""
        requested = self.requested_format
        if not head:
            return None if not final else requested if requested == "pcm" else None
        if _looks_like_text(head):
            if len(head) >= 2 * _TEXT_PROBE or final:
                raise _text_error(head)
            return None
        # decide only on prefixes that no later byte can change, so every split of the input decides alike
        for magic, kind in ((b"OggS", "opus"), (b"fLaC", "flac"), (b"RIFF", "wav"), (b"RF64", "wav"), (b"ID3", "")):
            n = min(len(head), len(magic))
            if head[:n] == magic[:n]:
                if n < len(magic) and not final:
                    return None  # could still be this magic
                if n == len(magic) and kind:
                    return kind
        if head[:1] == b"\xff" and len(head) < 2 and not final:
            return None  # could still be a frame sync
        sync = _sync_kind(head)
        if sync is not None:
            if requested != "pcm":
                if len(head) < 7 and not final:
                    return None
                if _frame_len(sync, head) is not None:
                    return sync
            else:
                # a pcm sample may look like a frame sync: believe it only if the next frame header follows
                length = _frame_len(sync, head) if len(head) >= 7 else None
                if length is None and len(head) < 7 and not final:
                    return None
                if length is not None and len(head) < length + 7 and not final:
                    return None
                if length is not None and _sync_kind(head[length:]) == sync and _frame_len(sync, head[length:]):
                    return sync
        if requested == "pcm":
            return "pcm"
        if final and len(head) < 4:
            raise DecodeError(f"the server sent only {len(head)} bytes, not {requested} audio")
        raise DecodeError(f"the server did not send {requested} audio (the stream starts with {head[:8].hex(' ')})")

    def _start(self, kind: str, head: bytes) -> None:
        self.detected_format = kind
        if kind != self.requested_format:
            self.format_mismatch = f"asked for {self.requested_format}, the server sent {kind}; playing it anyway"
        if kind == "pcm":
            self._backend = _PcmBackend()
        elif kind == "wav":
            self._backend = _WavBackend()
        elif kind == "mp3":
            self._backend = _ParsedBackend(_mpeg_codec(head), "mp3")
        elif kind == "aac":
            self._backend = _ParsedBackend("aac", "aac")
        elif kind == "flac":
            self._backend = _FlacBackend()
        else:
            self._backend = _OpusBackend()

    def _finish(self, chunks: list[np.ndarray], final: bool = False) -> np.ndarray:
        """Concatenate, resample to output_rate if asked, and count."""
        chunks = [c for c in chunks if len(c)]
        backend = self._backend
        if backend is not None and backend.rate is not None and self.sample_rate is None:
            self.sample_rate = self._output_rate or backend.rate
        native = backend.rate if backend is not None else None
        if self._output_rate is not None and native is not None and native != self._output_rate:
            if self._resampler is None:
                self._resampler = _Resampler(native, self._output_rate)
            chunks = self._resampler.push(chunks)
            if final:
                chunks += self._resampler.drain()
            chunks = [c for c in chunks if len(c)]
        if not chunks:
            return _EMPTY
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        self._samples += len(out)
        return out
