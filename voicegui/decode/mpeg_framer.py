"""Incremental framer for mp3 (MPEG audio layer I/II/III) and AAC in ADTS: cuts whole frames by their headers.

Each frame is handed out the moment its last byte is in (its length is in its header), like FFmpeg's raw parser,
but here we see every frame boundary, which the decoder needs:
- junk before the first frame, or between frames, is skipped by resyncing on a run of RUN valid, consistent frame
  headers in a row (a single sync word is too easy to find in junk);
- an ID3v1 tag ('TAG', 128 bytes) or an APE tag ('APETAGEX') between or after the frames is metadata, not a cut;
- another file starting at a frame boundary (an ID3v2 tag, a Xing/Info/VBRI tag frame after audio frames, a header
  of another MPEG version/layer/rate or of ADTS after mp3, RIFF/fLaC/OggS/...) ends this stream: the bytes from
  there are handed back in `rest` for the next decoder segment (servers that send one file per sentence).
`xing_info(frame)` reads a Xing/Info (LAME) or VBRI tag frame: encoder delay, end padding and frame count. Like
FFmpeg's mp3 demuxer, the end padding is trimmed only where the tag counts the frames, and it is a window that
ends with the frames counted: a count too small (stale, or corrupt) neither hides the rest of the stream nor, with
a delay or padding larger than the frames counted, everything.

Threads: plain synchronous object, owned by whoever feeds it (the asyncio loop thread in voicegui); no threads,
no locks. Memory: bounded by one frame plus one tag; junk is dropped as it is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicegui.decode.boundaries import file_start
from voicegui.decode.mpeg_frames import frame_len, sync_kind

RUN = 3  # consecutive valid headers that (re)establish sync after junk
_DECODER_DELAY = 529  # samples every mp3 decoder adds at the start (FFmpeg's mp3 demuxer uses 528 + 1)


@dataclass(frozen=True)
class XingInfo:
    """What to drop of the decoded samples, counted from the first sample of the first audio frame."""

    skip: int  # samples to drop at the start: the encoder delay (LAME tag) plus the decoder's 529
    # [start, end) of the end padding, when the tag gives a frame count: FFmpeg's first/last_discard_sample. What
    # comes after the frames the tag counts (a stale count, files glued together) plays, as in FFmpeg.
    padding: tuple[int, int] | None


def samples_per_frame(h: bytes | bytearray) -> int:
    layer, version = (h[1] >> 1) & 3, (h[1] >> 3) & 3
    return 384 if layer == 3 else 1152 if layer == 2 or version == 3 else 576


def xing_info(frame: bytes | bytearray) -> XingInfo | None:
    """The gapless info of a Xing/Info (LAME) or VBRI tag frame, None if `frame` is an audio frame.

    The tag sits right after the side info. LAME writes it there even in a CRC-protected stream (its
    lame_get_lametag_frame() takes 2 off its CRC-inclusive side-info length), other writers after the 2 CRC
    bytes: both places are tried."""
    if len(frame) < 4 or sync_kind(frame) != "mp3" or (frame[1] >> 1) & 3 != 1:
        return None
    version, mono = (frame[1] >> 3) & 3, frame[3] >> 6 == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    spf = samples_per_frame(frame)
    if frame[36:40] == b"VBRI" and len(frame) >= 58:
        delay = int.from_bytes(frame[42:44], "big")
        return XingInfo(delay + _DECODER_DELAY, None)  # a VBRI tag has no end padding
    offsets = (4 + side, 6 + side) if not frame[1] & 1 else (4 + side,)
    for pos in offsets:
        if frame[pos : pos + 4] in (b"Xing", b"Info"):
            break
    else:
        return None
    flags = int.from_bytes(frame[pos + 4 : pos + 8], "big")
    count = int.from_bytes(frame[pos + 8 : pos + 12], "big") if flags & 1 else 0
    pos += 8 + (4 if flags & 1 else 0) + (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    lame = frame[pos : pos + 24]
    delay = padding = 0
    if len(lame) == 24 and lame[:4] in (b"LAME", b"Lavf", b"Lavc", b"L3.9"):
        packed = int.from_bytes(lame[21:24], "big")
        delay, padding = packed >> 12, packed & 0xFFF
    end = count * spf
    return XingInfo(delay + _DECODER_DELAY, (end - padding + _DECODER_DELAY, end) if count else None)


def _key(kind: str, h: bytes | bytearray) -> tuple[int, ...]:
    """What every frame of one stream shares: version/layer and sample rate (and ADTS profile and channels)."""
    if kind == "aac":
        return (h[1] & 0xFE, h[2] & 0xFD, h[3] >> 6)
    return (h[1] & 0xFE, (h[2] >> 2) & 3)


def _header(kind: str, buf: bytes | bytearray, pos: int) -> int | None:
    """Frame length at buf[pos] if a valid `kind` header is there."""
    h = buf[pos : pos + 7]
    if len(h) < (7 if kind == "aac" else 4) or sync_kind(h) != kind:
        return None
    return frame_len(kind, h)


def find_run(kind: str, buf: bytes | bytearray, start: int, final: bool) -> int | None | bool:
    """Position of the first RUN valid, consistent `kind` frames in a row at or after `start`; None if more bytes
    are needed to tell, False if there is none. At the end of the stream (`final`) a run may end with the buffer."""
    pos = buf.find(b"\xff", start)
    while 0 <= pos:
        length = _header(kind, buf, pos)
        if length is not None:
            key = _key(kind, buf[pos : pos + 4])
            q, count = pos + length, 1
            while count < RUN:
                if q + 7 > len(buf):
                    if final and q == len(buf):
                        return pos
                    if not final:
                        return None
                    break
                n = _header(kind, buf, q)
                if n is None or _key(kind, buf[q : q + 4]) != key:
                    break
                q, count = q + n, count + 1
            if count == RUN:
                return pos
        pos = buf.find(b"\xff", pos + 1)
    if not final and len(buf) and buf[-1] == 0xFF:
        return None
    return False


class MpegFramer:
    """feed(bytes) -> whole frames (bytes) of one mp3 or ADTS stream; `rest` once another file begins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rest: bytes | None = None
        self.junk = 0  # bytes skipped to find (or find again) the frames
        self.tags = 0  # ID3v1 / APE tags skipped
        self._buf = bytearray()
        self._key: tuple[int, ...] | None = None  # None: not in sync
        self._frames = 0
        self._skip = 0  # bytes of a tag still to skip

    @property
    def frames(self) -> int:
        return self._frames

    def feed(self, data: bytes) -> list[bytes]:
        if self.rest is not None:
            raise RuntimeError("feed() after the next file began")
        self._buf += data
        out: list[bytes] = []
        while self.rest is None and self._step(out, final=False):
            pass
        return out

    def flush(self) -> tuple[list[bytes], bool]:
        """End of stream: (last frames, truncated). Bytes that make no whole frame mean the stream was cut."""
        out: list[bytes] = []
        junk = self.junk
        while self.rest is None and self._step(out, final=True):
            pass
        truncated = bool(self._buf) or self._skip > 0 or self.junk > junk
        self._buf.clear()
        return out, truncated

    def _step(self, out: list[bytes], final: bool) -> bool:
        buf = self._buf
        if self._skip:
            n = min(self._skip, len(buf))
            del buf[:n]
            self._skip -= n
            return bool(buf)
        if not buf:
            return False
        if self._key is None:
            return self._sync(final)
        tag = self._tag(final)
        if tag is not None:
            return tag
        verdict = file_start(buf)
        if verdict is None:
            # Too few bytes to tell (a frame header cut short): wait for more, or at the end leave them in the
            # buffer, which flush() reports as a truncated stream. Resyncing here at the end found the same
            # header again and looped for ever (a lone 4-byte header after an ID3 tag: the fuzz corpus).
            return False
        if verdict != self.kind:
            if verdict:
                self.rest = bytes(buf)  # another file (ID3v2, another container, ADTS after mp3, ...)
                buf.clear()
                return False
            return self._lost(final)
        if _key(self.kind, buf[:4]) != self._key:
            self.rest = bytes(buf)  # another version/layer/rate: another file, with its own decoder
            buf.clear()
            return False
        length = _header(self.kind, buf, 0)
        assert length is not None  # file_start found a valid header
        if len(buf) < length:
            return False
        frame = bytes(buf[:length])
        if self._frames and self.kind == "mp3" and xing_info(frame) is not None:
            self.rest = bytes(buf)  # a tag frame after audio frames: the next file's first frame
            buf.clear()
            return False
        del buf[:length]
        self._frames += 1
        out.append(frame)
        return True

    def _tag(self, final: bool) -> bool | None:
        """Skip an ID3v1 or APE tag at a frame boundary; None if there is none."""
        buf = self._buf
        for magic, need in ((b"TAG", 128), (b"APETAGEX", 32)):
            n = min(len(buf), len(magic))
            if buf[:n] != magic[:n]:
                continue
            if len(buf) < need:
                return None if final else False
            if magic == b"TAG":
                self._skip = 128
            else:
                size, flags = int.from_bytes(buf[12:16], "little"), int.from_bytes(buf[20:24], "little")
                self._skip = 32 + size if flags & (1 << 29) else 32  # a header counts the items and the footer
            self.tags += 1
            return True
        return None

    def _sync(self, final: bool) -> bool:
        buf = self._buf
        at0 = self._frames == 0 and self.junk == 0 and _header(self.kind, buf, 0) is not None
        pos = 0 if at0 else find_run(self.kind, buf, 0, final)
        if pos is None:
            return False
        if pos is False:
            keep = 0 if final else 6  # a header may be starting in the last bytes
            drop = max(0, len(buf) - keep)
            self.junk += drop
            del buf[:drop]
            return False
        self.junk += pos
        del buf[:pos]
        self._key = _key(self.kind, buf[:4])
        return True

    def _lost(self, final: bool) -> bool:
        """Junk where a frame should start: drop sync and look for the next run of frames."""
        self._key = None
        return self._sync(final)
