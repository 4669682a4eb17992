"""Incremental FLAC framer: reads the metadata, then cuts the byte stream into whole FLAC frames.

FFmpeg's FLAC parser reads ~1 s ahead before it hands out the first frame, too slow for progressive playback.
FLAC frames carry no length, so a frame ends where the next one starts: a candidate next header must have the
sync code (0xFFF8/0xFFF9), a valid header CRC-8, fields consistent with STREAMINFO and the previous frame,
the next frame/sample number, and the bytes before it must close the current frame's CRC-16. At end of stream
the remainder is a frame only if its CRC-16 holds. So a frame comes out as soon as the next header is in,
i.e. within one FLAC frame of the audio.

Waiting for the next header costs a whole frame's time when a server writes each frame as it is encoded (the
frame's last byte is then the last byte of a write, and the next header comes one frame later: 96 ms at 2304
samples / 24 kHz). So `complete_frame()` also offers the buffered bytes as soon as they close the CRC-16 on
their own. A CRC-16 can match by chance (1 in 65536 per check), so that is only a candidate: the caller
decodes it and calls `take_complete_frame()` only if the decoder took it as a whole frame of the header's
block size (a cut frame makes FFmpeg's FLAC decoder read past its end, which it rejects).

A body may hold several FLAC files back to back (one per sentence): a new file's 'fLaC' marker (or another
container's start) where the bytes before it close the current frame's CRC-16, or right after a frame, ends this
stream; the bytes from there are handed back in `rest` for the next decoder segment.

Threads: plain synchronous object, owned by whoever feeds it (the asyncio loop thread in voicegui); no threads,
no locks. Memory: bounded by one frame (capped at `max_frame`) plus one metadata block header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from voicegui.decode.boundaries import MAGICS, file_start

_MAGIC = b"fLaC"
_MAX_HEADER = 16  # longest possible frame header: 4 + 7 (coded number) + 2 (block size) + 2 (rate) + 1 (CRC-8)
_RATES = (0, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)
_BITS = (0, 8, 12, 0, 16, 20, 24, 32)


class FlacError(ValueError):
    """The bytes are not (or are no longer) a FLAC stream."""


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC8 = _crc8_table()
_CRC16 = _crc16_table()


def crc8(data: bytes | bytearray | memoryview) -> int:
    crc = 0
    for b in data:
        crc = _CRC8[crc ^ b]
    return crc


def crc16_update(crc: int, data: bytes | bytearray | memoryview) -> int:
    table = _CRC16
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


@dataclass(frozen=True)
class StreamInfo:
    raw: bytes  # the 34-byte STREAMINFO body: FFmpeg's flac decoder takes it as extradata
    min_block: int
    max_block: int
    max_frame: int  # 0 = unknown
    sample_rate: int
    channels: int
    bits: int
    total_samples: int  # 0 = unknown (streamed)

    @classmethod
    def parse(cls, raw: bytes) -> StreamInfo:
        min_block, max_block = struct.unpack_from(">HH", raw, 0)
        max_frame = int.from_bytes(raw[7:10], "big")
        packed = int.from_bytes(raw[10:18], "big")
        rate = packed >> 44
        channels = ((packed >> 41) & 0x7) + 1
        bits = ((packed >> 36) & 0x1F) + 1
        total = packed & ((1 << 36) - 1)
        if rate == 0 or bits < 4:
            raise FlacError("FLAC STREAMINFO is invalid")
        return cls(bytes(raw), min_block, max_block, max_frame, rate, channels, bits, total)


@dataclass(frozen=True)
class FrameHeader:
    variable: bool  # blocking strategy: number is a sample number (True) or a frame number (False)
    number: int
    block_size: int
    sample_rate: int  # 0 = as in STREAMINFO
    channels: int
    bits: int  # 0 = as in STREAMINFO
    length: int  # header bytes, CRC-8 included


def parse_frame_header(buf: bytes | bytearray, pos: int) -> FrameHeader | None | Literal[False]:
    """Frame header at buf[pos:]: FrameHeader if valid, None if invalid, False if more bytes are needed."""
    end = len(buf)
    if end - pos < 4:
        return False
    b0, b1, b2, b3 = buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]
    if b0 != 0xFF or b1 & 0xFE != 0xF8:
        return None
    bs_code, sr_code = b2 >> 4, b2 & 0x0F
    ch_code, ss_code = b3 >> 4, (b3 >> 1) & 0x7
    if bs_code == 0 or sr_code == 15 or ch_code > 10 or ss_code == 3 or b3 & 1:
        return None
    i = pos + 4
    if i >= end:
        return False
    # UTF-8-like coded frame/sample number
    first = buf[i]
    if first < 0x80:
        extra, number = 0, first
    elif first & 0xE0 == 0xC0:
        extra, number = 1, first & 0x1F
    elif first & 0xF0 == 0xE0:
        extra, number = 2, first & 0x0F
    elif first & 0xF8 == 0xF0:
        extra, number = 3, first & 0x07
    elif first & 0xFC == 0xF8:
        extra, number = 4, first & 0x03
    elif first & 0xFE == 0xFC:
        extra, number = 5, first & 0x01
    elif first == 0xFE:
        extra, number = 6, 0
    else:
        return None
    i += 1
    if end - i < extra:
        return False
    for _ in range(extra):
        c = buf[i]
        if c & 0xC0 != 0x80:
            return None
        number = (number << 6) | (c & 0x3F)
        i += 1
    if bs_code == 1:
        block = 192
    elif bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code == 6:
        if end - i < 1:
            return False
        block = buf[i] + 1
        i += 1
    elif bs_code == 7:
        if end - i < 2:
            return False
        block = ((buf[i] << 8) | buf[i + 1]) + 1
        i += 2
    else:
        block = 256 << (bs_code - 8)
    if sr_code <= 11:
        rate = _RATES[sr_code]
    else:
        width = 1 if sr_code == 12 else 2
        if end - i < width:
            return False
        value = buf[i] if width == 1 else (buf[i] << 8) | buf[i + 1]
        rate = value * 1000 if sr_code == 12 else value if sr_code == 13 else value * 10
        i += width
    if end - i < 1:
        return False
    if crc8(buf[pos:i]) != buf[i]:
        return None
    channels = ch_code + 1 if ch_code < 8 else 2
    return FrameHeader(bool(b1 & 1), number, block, rate, channels, _BITS[ss_code], i + 1 - pos)


class FlacFrameSplitter:
    """feed(bytes) -> whole FLAC frames (bytes), each ready for one decoder packet."""

    def __init__(self, max_frame: int = 1 << 22, max_junk: int = 1 << 16) -> None:
        self.streaminfo: StreamInfo | None = None
        self._buf = bytearray()
        self._state = "magic"  # magic -> meta -> (skip) -> frames
        self._skip = 0  # metadata bytes still to skip (pictures etc. are never stored)
        self._last_meta = False
        self._max_frame = max_frame
        self._max_junk = max_junk
        self._header: FrameHeader | None = None  # header of the frame at the start of _buf
        self._scan = 0  # next position in _buf to look for a following frame's sync code
        self._crc = 0  # CRC-16 of _buf[:_crc_pos]
        self._crc_pos = 0
        self._tail_crc = 0  # CRC-16 of _buf[:_tail_pos], for complete_frame()
        self._tail_pos = 0
        self._junk = 0
        self._magic_scan = 0  # next position in _buf to look for another file's start
        self.rest: bytes | None = None  # bytes from where another file starts

    @property
    def mid_unit(self) -> bool:
        """True if the input so far ends inside metadata or inside a frame that has not been handed out."""
        return self._state != "frames" or bool(self._buf)

    def waiting_on(self) -> str:
        """What the bytes fed since the last frame went into (for a message when they never end)."""
        if self._state == "magic":
            return "a flac marker that never comes"
        if self._state == "meta":
            return "a flac metadata block that never ends" if self._skip else "flac metadata blocks that never end"
        return "bytes with no flac frame in them" if self._header is None else "a flac frame that never ends"

    def complete_frame(self) -> tuple[bytes, int] | None:
        """(bytes, block size) if everything buffered is one frame by its CRC-16 alone, else None.

        A candidate only (see the module docstring): hand it out with take_complete_frame() once it decoded."""
        h = self._header
        if self._state != "frames" or h is None or len(self._buf) < h.length + 2:
            return None
        if self._tail_pos < len(self._buf):
            self._tail_crc = crc16_update(self._tail_crc, self._buf[self._tail_pos :])
            self._tail_pos = len(self._buf)
        return (bytes(self._buf), h.block_size) if self._tail_crc == 0 else None

    def take_complete_frame(self) -> None:
        """The candidate from complete_frame() decoded as a whole frame: drop it; the next header follows."""
        self._buf.clear()
        self._header = None

    def feed(self, data: bytes) -> list[bytes]:
        if self.rest is not None:
            raise RuntimeError("feed() after the next file began")
        self._buf += data
        frames: list[bytes] = []
        while self.rest is None and self._step(frames):
            pass
        return frames

    def _next_file(self, at: int) -> None:
        self.rest = bytes(self._buf[at:])
        self._buf.clear()
        self._header = None

    def flush(self) -> tuple[list[bytes], bool]:
        """End of stream: (last frames, truncated). The remainder is a frame only if its CRC-16 holds."""
        frames: list[bytes] = []
        if self._state != "frames":
            return frames, bool(self._buf) or self._state != "magic" or self._skip > 0
        if self._header is None:
            return frames, bool(self._buf)
        crc = crc16_update(self._crc, self._buf[self._crc_pos :])
        truncated = crc != 0
        if not truncated:
            frames.append(bytes(self._buf))
        self._buf.clear()
        self._header = None
        return frames, truncated

    def _step(self, frames: list[bytes]) -> bool:
        buf = self._buf
        if self._state == "magic":
            if len(buf) < 4:
                return False
            if buf[:4] != _MAGIC:
                raise FlacError("not a FLAC stream (no 'fLaC' marker)")
            del buf[:4]
            self._state = "meta"
            return True
        if self._state == "meta":
            if self._skip:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                return self._skip == 0 and self._after_meta_block()
            if len(buf) < 4:
                return False
            flags, length = buf[0], int.from_bytes(buf[1:4], "big")
            kind = flags & 0x7F
            self._last_meta = bool(flags & 0x80)
            if kind == 0:
                if length < 34:
                    raise FlacError("FLAC STREAMINFO is too short")
                if len(buf) < 4 + length:
                    return False
                self.streaminfo = StreamInfo.parse(bytes(buf[4:38]))
                del buf[: 4 + length]
                return self._after_meta_block()
            if kind == 127:
                raise FlacError("FLAC metadata is invalid")
            if self.streaminfo is None:
                raise FlacError("FLAC stream does not start with STREAMINFO")
            del buf[:4]
            self._skip = length
            if length == 0:
                return self._after_meta_block()
            return True
        return self._frames_step(frames)

    def _after_meta_block(self) -> bool:
        if self._last_meta:
            self._state = "frames"
        return True

    def _consistent(self, h: FrameHeader) -> bool:
        si = self.streaminfo
        assert si is not None
        if h.channels != si.channels or (h.bits and h.bits != si.bits):
            return False
        if h.sample_rate and h.sample_rate != si.sample_rate:
            return False
        return True

    def _frames_step(self, frames: list[bytes]) -> bool:
        buf = self._buf
        if self._header is None:
            # right after metadata or a frame: another file may start here
            verdict = file_start(buf, frames=False)
            if verdict is None:
                return False
            if verdict:
                self._next_file(0)
                return False
            # find the first frame header (right after metadata, or after junk)
            while True:
                at = buf.find(b"\xff", 0)
                if at < 0:
                    self._note_junk(len(buf))
                    buf.clear()
                    return False
                if at:
                    self._note_junk(at)
                    del buf[:at]
                h = parse_frame_header(buf, 0)
                if h is False:
                    return False
                if h is not None and self._consistent(h):
                    self._begin_frame(h)
                    return True
                self._note_junk(1)
                del buf[:1]
        cur = self._header
        if self._file_after_frame(frames):
            return False
        while True:
            at = buf.find(b"\xff", self._scan)
            if at < 0:
                self._scan = len(buf)
                break
            h = parse_frame_header(buf, at)
            if h is False:
                self._scan = at  # retry here when more bytes arrive
                break
            self._scan = at + 1
            if h is None or h.variable != cur.variable or not self._consistent(h):
                continue
            expected = cur.number + (cur.block_size if cur.variable else 1)
            if h.number != expected:
                continue
            # the bytes before the candidate must close the current frame's CRC-16 (footer)
            self._crc = crc16_update(self._crc, buf[self._crc_pos : at])
            self._crc_pos = at
            if self._crc != 0:
                continue
            frames.append(bytes(buf[:at]))
            del buf[:at]
            self._begin_frame(h)
            return True
        if len(buf) > self._max_frame:
            raise FlacError(f"FLAC frame longer than {self._max_frame} bytes: stream is corrupt")
        return False

    def _file_after_frame(self, frames: list[bytes]) -> bool:
        """Another file's start right where the bytes before it close the current frame's CRC-16: the frame is
        whole (appended to `frames`) and the rest is the next file's."""
        buf = self._buf
        while True:
            found = MAGICS.search(buf, self._magic_scan)
            if found is None:
                self._magic_scan = max(self._magic_scan, len(buf) - 3)
                return False
            at = found.start() - (4 if found.group() == b"ftyp" else 0)
            verdict = file_start(buf[at:], frames=False) if at >= 0 else False
            if verdict is None:
                self._magic_scan = found.start()
                return False
            self._magic_scan = found.start() + 1
            if not verdict:
                continue
            self._crc = crc16_update(self._crc, buf[self._crc_pos : at]) if at > self._crc_pos else self._crc
            self._crc_pos = max(self._crc_pos, at)
            if self._crc_pos == at and self._crc == 0:
                frames.append(bytes(buf[:at]))
                self._next_file(at)
                return True

    def _begin_frame(self, h: FrameHeader) -> None:
        """`h` is the header of the frame now at the start of _buf."""
        self._header = h
        self._magic_scan = h.length
        self._scan = h.length
        self._crc = self._crc_pos = 0
        self._tail_crc = self._tail_pos = 0

    def _note_junk(self, n: int) -> None:
        self._junk += n
        if self._junk > self._max_junk:
            raise FlacError("no FLAC frames found in the stream")
