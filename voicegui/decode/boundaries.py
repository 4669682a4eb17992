"""Where a new file starts inside a response body (servers that send one whole file per sentence, back to back).

`file_start(buf)` says whether a new audio file certainly begins at buf[0]: the container's magic plus the next
few header bytes, checked strictly enough that audio data seldom looks like one (it is only asked where the
previous file has ended, or, for a wav with a streaming header, at sample-frame-aligned positions inside the data,
where `riff_wave_header` asks for a whole sane 'fmt ' chunk). The backends call it; StreamDecoder then starts a
new decoder segment on the bytes from there.

Threads: plain functions with no state; they run on the thread that feeds the decoder (the asyncio loop thread in
voicegui).
"""

from __future__ import annotations

import re
from typing import Literal

from voicegui.decode.mpeg_frames import frame_len, sync_kind

# The containers no speech format asks for but some servers send (decode/container.py reads them), as users know them.
CONTAINER_NAMES = {"webm": "WebM (Matroska)", "mp4": "MP4/M4A"}

# how many bytes file_start needs at most to decide (a frame header is 7, the longest magic check 12)
FILE_START_BYTES = 16
RIFF_HEADER_BYTES = 36  # 'RIFF' size 'WAVE' 'fmt ' size + the 16 bytes of PCMWAVEFORMAT

Verdict = str | Literal[False] | None


def file_start(buf: bytes | bytearray, frames: bool = True) -> Verdict:
    """The container ('wav', 'flac', 'opus', 'id3', 'mp3', 'aac', 'webm', 'mp4') of a file starting at buf[0],
    False if none starts there, None if more bytes are needed to tell. `frames=False` leaves out MPEG/ADTS frame
    syncs (a FLAC frame's sync code looks like an ADTS header)."""
    if not buf:
        return None
    checks = ((b"RIFF", 12, _wave), (b"RF64", 12, _wave), (b"fLaC", 5, _flac), (b"OggS", 6, _ogg_bos),
              (b"ID3", 10, _id3), (b"\x1a\x45\xdf\xa3", 4, None))
    for magic, need, check in checks:
        n = min(len(buf), len(magic))
        if buf[:n] != magic[:n]:
            continue
        if len(buf) < need:
            return None
        if check is None:
            return "webm"
        return check(buf)
    if buf[0] == 0:  # an MP4 file starts with its small 'ftyp' box: size 00 00 xx xx, then 'ftyp'
        if buf[1:2] not in (b"", b"\x00"):
            return False
        if len(buf) < 8:
            return None if buf[4:] == b"ftyp"[: max(0, len(buf) - 4)] else False
        return "mp4" if buf[4:8] == b"ftyp" else False
    kind = sync_kind(buf) if frames else None
    if kind is not None:
        if len(buf) < 7:
            return None
        return kind if frame_len(kind, buf) is not None else False
    if len(buf) < 2 and buf[0] == 0xFF and frames:
        return None
    return False


# a file magic anywhere in a buffer (frame syncs aside): where file_start is worth asking
MAGICS = re.compile(rb"RIFF|RF64|fLaC|OggS|ID3|\x1a\x45\xdf\xa3|ftyp")


def _wave(buf: bytes | bytearray) -> Verdict:
    return "wav" if buf[8:12] == b"WAVE" else False


def _flac(buf: bytes | bytearray) -> Verdict:
    return "flac" if buf[4] & 0x7F == 0 else False  # STREAMINFO is always the first metadata block


def _ogg_bos(buf: bytes | bytearray) -> Verdict:
    return "opus" if buf[4] == 0 and buf[5] & 0x02 else False  # version 0, beginning-of-stream page


def _id3(buf: bytes | bytearray) -> Verdict:
    if buf[3] not in (2, 3, 4) or buf[4] == 0xFF or any(b & 0x80 for b in buf[6:10]):
        return False
    return "id3"


def riff_wave_header(buf: bytes | bytearray, pos: int) -> bool | None:
    """True if a RIFF/RF64 WAVE header with a sane 'fmt ' chunk starts at buf[pos], False if not, None if the
    bytes there are a prefix of one (wait for more). Strict, because it is looked for inside audio data."""
    head = buf[pos : pos + RIFF_HEADER_BYTES]
    for magic in (b"RIFF", b"RF64"):
        n = min(len(head), 4)
        if head[:n] == magic[:n]:
            break
    else:
        return False
    if len(head) < RIFF_HEADER_BYTES:
        prefix = head[8:20]
        want = b"WAVEfmt "[: max(0, min(8, len(head) - 8))]
        return None if prefix[: len(want)] == want else False
    if head[8:16] != b"WAVEfmt ":
        return False
    size = int.from_bytes(head[16:20], "little")
    tag, channels, rate, byte_rate, align, bits = (int.from_bytes(head[a:b], "little") for a, b in
                                                   ((20, 22), (22, 24), (24, 28), (28, 32), (32, 34), (34, 36)))
    return (16 <= size <= 1024 and tag in (1, 3, 0xFFFE) and 1 <= channels <= 8 and 1000 <= rate <= 768000
            and bits in (8, 16, 24, 32, 64) and align == channels * bits // 8 and byte_rate == rate * align)
